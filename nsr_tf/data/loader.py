"""``load``: one preprocessed split of MNIST, CIFAR-10 or SVHN as NumPy."""

from __future__ import annotations

import os

import numpy as np
from absl import logging

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


def resolve_source(
    name: str, *, data_dir: str | None = None, source: str = "auto"
) -> tuple[str, str | None, str | None]:
    """Where :func:`load` reads ``name`` from, without reading it.

    ``source="files"`` reads only ``data_dir`` (the bundled MNIST when no
    ``data_dir`` is given) and never falls back to anything else.
    ``source="auto"`` reads the official files of ``data_dir`` when it holds
    any, else the bundled MNIST, else tensorflow-datasets.

    Returns:
        ``(kind, format, directory)``: kind ``"files"`` (official files of
        ``data_dir``), ``"bundled"`` or ``"tfds"``.

    Raises:
        ValueError: when ``source="files"`` finds no official files.
    """
    _check("name", name, NAMES)
    _check("source", source, SOURCES)
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or None
    if source == "tfds":
        return "tfds", None, data_dir
    located = sources.locate_files(name, data_dir)
    if located is not None:
        return ("files", *located)
    if source == "files" and data_dir:
        raise ValueError(
            f"No official {name} files found in `data_dir` (expected "
            f"{sources.expected_files(name)}, directly or in that "
            f"sub-folder). Received: data_dir={data_dir!r}"
            + ("" if os.path.isdir(data_dir) else " (it does not exist)")
        )
    bundled = sources.bundled_files(name)
    if bundled is not None:
        if data_dir:
            logging.warning(
                "No official %s files in data_dir=%r: using the bundled copy "
                "(source='auto'; pass source='files' to require data_dir).",
                name,
                data_dir,
            )
        return ("bundled", *bundled)
    if source == "files":
        raise ValueError(
            f"`source`='files' needs a `data_dir` holding the official {name} "
            f"files ({sources.expected_files(name)}). Received: data_dir=None"
        )
    return "tfds", None, data_dir


def describe_source(
    name: str, *, data_dir: str | None = None, source: str = "auto"
) -> str:
    """A short, path-free label of the data :func:`load` would read.

    ``"files:<format>"``, ``"bundled:mnist"`` or ``"tfds:<name>"``: the
    same on every machine that reads the same data, so that sweep records
    can compare it.
    """
    kind, fmt, _ = resolve_source(name, data_dir=data_dir, source=source)
    return f"{kind}:{fmt or name}"


def _read_official(name, official_split, data_dir, source):
    kind, fmt, directory = resolve_source(
        name, data_dir=data_dir, source=source
    )
    if kind == "tfds":
        return sources.read_tfds(name, official_split, directory)
    return sources.read_files(fmt, directory, official_split)


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
            binary batches, SVHN ``*_32x32.mat``, directly or in
            the usual sub-folder), or the tfds data directory. Defaults to
            the ``NSR_TF_DATA_DIR`` environment variable.
        source: ``"files"``, ``"tfds"`` or ``"auto"`` (official files when
            ``data_dir`` holds them or the dataset is bundled -- MNIST is --,
            else tensorflow-datasets). ``"files"`` reads ``data_dir`` only
            (or the bundled MNIST when no ``data_dir`` is given) and never
            falls back; see :func:`resolve_source`.
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
            file of the split is missing, is truncated or does not have the
            official size or count (the message names the file); or when
            tensorflow-datasets cannot provide the data (e.g. offline). The
            message names the files or dataset expected and the directory.

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
