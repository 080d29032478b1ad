"""``load``: one preprocessed split of MNIST, CIFAR-10 or SVHN as NumPy."""

from __future__ import annotations

import os

import numpy as np

from nsr_tf.data import preprocess
from nsr_tf.data import sources

NAMES = ("mnist", "cifar10", "svhn")
SPLITS = ("train", "validation", "test")
SOURCES = ("auto", "files", "tfds")
NUM_CLASSES = 10
VALIDATION_SIZE = 500
DATA_DIR_ENV = "NSR_TF_DATA_DIR"


def _check(argument: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(
            f"`{argument}` must be one of {allowed}. "
            f"Received: {argument}={value!r}"
        )


def _read_official(name, official_split, data_dir, source):
    located = sources.locate_files(name, data_dir)
    if source == "files" or (source == "auto" and located is not None):
        if located is None:
            raise ValueError(
                f"No official {name} files found in `data_dir`. "
                f"Received: data_dir={data_dir!r}"
            )
        return sources.read_files(*located, official_split)
    return sources.read_tfds(name, official_split, data_dir)


def draw_random_labels(n: int, *, seed: int, official_split: str) -> np.ndarray:
    """Uniform random classes for an official split (SN paper Fig. 4).

    The labels of the whole official split are drawn from ``seed`` first and
    sliced afterwards, so validation and test labels are consistent.
    """
    stream = 0 if official_split == "train" else 1
    rng = np.random.default_rng([seed, stream])
    return rng.integers(0, NUM_CLASSES, size=n, dtype=np.int64)


def load(
    name: str,
    split: str,
    *,
    data_dir: str | None = None,
    source: str = "auto",
    random_labels: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Loads one split of a dataset, preprocessed as the SN paper does.

    Splits follow the SN paper's protocol (spec ``sn_paper.md`` §1):
    ``train`` is the official training set, ``validation`` the first 500
    examples of the official test set and ``test`` the rest of it.

    Args:
        name: ``"mnist"``, ``"cifar10"`` or ``"svhn"``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        data_dir: directory with the official files (MNIST idx, CIFAR-10
            binary or python batches, SVHN ``*_32x32.mat``, directly or in
            the usual sub-folder), or the tfds data directory. Defaults to
            the ``NSR_TF_DATA_DIR`` environment variable.
        source: ``"files"``, ``"tfds"`` or ``"auto"`` (official files when
            ``data_dir`` holds them or the dataset is bundled -- MNIST is --,
            else tensorflow-datasets).
        random_labels: replace every label by a uniform random class drawn
            from ``seed`` (the same labels for every call).
        seed: seed of the random labels.

    Returns:
        ``(x, y)``: float32 NHWC images (MNIST 28x28x1 in [0, 1]; CIFAR-10
        and SVHN standardized per image, cropped to 28x28x3) and int64
        labels in [0, 10).

    Raises:
        ValueError: for an unknown name, split or source; when
            ``source="files"`` finds no official files; when an official
            file is truncated or corrupt; or when tensorflow-datasets cannot
            provide the data (e.g. offline). The message names the files or
            dataset expected and the directory.

    Example:

    >>> x, y = load("mnist", "validation")
    >>> x.shape, y.dtype
    ((500, 28, 28, 1), dtype('int64'))
    """
    _check("name", name, NAMES)
    _check("split", split, SPLITS)
    _check("source", source, SOURCES)
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or None
    official_split = "train" if split == "train" else "test"
    images, labels = _read_official(name, official_split, data_dir, source)
    x, y = preprocess.preprocess(name, images, labels)
    if random_labels:
        y = draw_random_labels(len(y), seed=seed, official_split=official_split)
    if split == "validation":
        return x[:VALIDATION_SIZE], y[:VALIDATION_SIZE]
    if split == "test":
        return x[VALIDATION_SIZE:], y[VALIDATION_SIZE:]
    return x, y
