"""Accuracy under any attack of ``nsr_tf.attacks``, batched, with progress."""

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nsr_tf import checks
from nsr_tf import model_adapter
from nsr_tf import perturb
from nsr_tf.attacks import _args

ATTACK_LABELS = ("predicted", "true")


def _batches(data: Any, batch_size: int) -> tuple[Iterator, int | None]:
    """(x, y) batches from arrays or from a batched ``tf.data.Dataset``."""
    if isinstance(data, tf.data.Dataset):
        n = int(data.cardinality())
        return iter(data), (n if n >= 0 else None)
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError(
            "`data` must be a tuple (x, y) or a batched tf.data.Dataset of "
            f"(x, y). Received: data of type {type(data).__name__}"
        )
    x, y = data
    n = len(x)
    if len(y) != n:
        raise ValueError(
            "`x` and `y` must have the same number of examples. Received: "
            f"len(x)={n}, len(y)={len(y)}"
        )
    count = -(-n // batch_size)
    return (
        (x[i : i + batch_size], y[i : i + batch_size])
        for i in range(0, n, batch_size)
    ), count


def logits_under(
    model: Any,
    x: Any,
    deltas: list | None = None,
    *,
    include_bias: bool = False,
    weights: list | None = None,
) -> tf.Tensor:
    """Logits of ``model`` at ``x`` with optional weight perturbations.

    Keras models get the deltas substituted (no mutation); SavedModels get
    them added in place and restored exactly.
    """
    x = _args.as_input(x)
    if deltas is None:
        return model_adapter.logits_fn(model, name="model")(x)
    targets = perturb.weight_targets(
        model, include_bias=include_bias, weights=weights
    )
    if model_adapter.is_saved_model(model):
        with perturb.perturbed_variables(targets, deltas):
            return model.serve(x)
    return perturb.perturbed_call(model, x, deltas, targets=targets)


def robust_accuracy(
    model: Any,
    data: Any,
    attack: Callable | None = None,
    *,
    batch_size: int = 256,
    progress: bool = True,
    attack_labels: str = "predicted",
    **attack_kwargs: Any,
) -> float:
    """Accuracy on ``data`` of the model under ``attack``.

    Every batch is attacked with ``attack(model, x_batch, y=labels,
    **attack_kwargs)`` and scored against the true labels. Input attacks
    (``fgm``, ``pgd``, ``wrm``) return ``x_adv``; a joint attack
    (``joint_pgd``) returns ``(x_adv, deltas)`` and is scored at the
    perturbed weights, one weight perturbation per batch (so the result
    depends on ``batch_size``; see ``accuracy_surface`` for a universal one).

    Args:
        model: a callable ``x -> logits``, a Keras model (called with
            ``training=False``) or a loaded SavedModel (``serve``). Joint
            attacks need a Keras model or a SavedModel.
        data: ``(x, y)`` arrays, or a *batched* ``tf.data.Dataset`` of
            ``(x, y)`` (then ``batch_size`` is ignored).
        attack: an attack of ``nsr_tf.attacks``, or ``None`` for clean
            accuracy.
        batch_size: examples per attacked batch (>= 1).
        progress: show a Keras progress bar.
        attack_labels: ``"predicted"`` attacks the model's clean
            predictions (``y=None``; the SN paper's protocol for Table 1) and
            ``"true"`` attacks the true labels. Accuracy is always measured
            against the true labels.
        **attack_kwargs: passed to the attack (``eps``, ``norm``, ...).

    Returns:
        The accuracy, a float in [0, 1].

    Raises:
        ValueError: bad ``batch_size``, ``attack_labels`` or ``data``.

    Reference:
        Farnia et al. 2019, section 5 and Table 1 (spec/sn_paper.md
        section 6); Tsai et al. 2021, section 4.2.
    """
    checks.check_integer("batch_size", batch_size)
    model_adapter.kind(model)
    if attack_labels not in ATTACK_LABELS:
        raise ValueError(
            f"`attack_labels` must be one of {ATTACK_LABELS}. Received: "
            f"attack_labels={attack_labels!r}"
        )
    batches, count = _batches(data, batch_size)
    bar = keras.utils.Progbar(count) if progress else None
    correct = total = 0
    joint_opts = {k: attack_kwargs.get(k) for k in ("include_bias", "weights")}
    joint_opts["include_bias"] = bool(joint_opts["include_bias"])
    for step, (xb, yb) in enumerate(batches):
        if attack is None:
            logits = logits_under(model, xb)
        else:
            y_att = None if attack_labels == "predicted" else yb
            out = attack(model, xb, y=y_att, **attack_kwargs)
            if isinstance(out, (tuple, list)):
                x_adv, deltas = out
                logits = logits_under(model, x_adv, deltas, **joint_opts)
            else:
                logits = logits_under(model, out)
        logits = np.asarray(logits)
        truth = checks.class_indices(yb, logits.shape[-1]).numpy()
        pred = np.argmax(logits, axis=-1)
        correct += int(np.sum(pred == truth))
        total += len(truth)
        if bar is not None:
            bar.update(step + 1, values=[("acc", correct / max(total, 1))])
    if total == 0:
        raise ValueError("`data` must contain at least one example.")
    return correct / total
