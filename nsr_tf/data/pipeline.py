"""NumPy arrays -> ``tf.data`` pipelines, and dataset statistics."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def to_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = True,
) -> tf.data.Dataset:
    """A batched ``tf.data.Dataset`` of ``(x, y)``, reshuffled every epoch.

    The SN paper drops the last partial batch and reshuffles every epoch
    (spec ``sn_paper.md`` §5); both are the defaults here.

    Args:
        x: inputs, first axis = examples.
        y: labels, same first dimension as ``x``.
        batch_size: examples per batch (>= 1).
        shuffle: reshuffle the whole set every epoch with ``seed``.
        seed: shuffling seed.
        drop_remainder: drop the last partial batch.

    Raises:
        ValueError: for a non-positive batch size or mismatched lengths.
    """
    if int(batch_size) < 1:
        raise ValueError(
            f"`batch_size` must be >= 1. Received: batch_size={batch_size}"
        )
    if len(x) != len(y):
        raise ValueError(
            "`x` and `y` must have the same number of examples. "
            f"Received: len(x)={len(x)}, len(y)={len(y)}"
        )
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(
            len(x), seed=seed, reshuffle_each_iteration=True
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def mean_l2_norm(x: np.ndarray) -> float:
    """C2 = mean over examples of ||x||_2 (spec ``sn_paper.md`` §1).

    The SN paper scales its attack budgets with it: eps = 0.05 * C2 for the
    l2 attacks, gamma = 0.002 * C2 (CIFAR-10, SVHN) or 0.04 * C2 (MNIST).
    Computed in float64 on the preprocessed training inputs.
    """
    if len(x) == 0:
        raise ValueError("`x` must hold at least one example. Received: 0.")
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return float(np.linalg.norm(flat, axis=1).mean())
