"""Where raw arrays come from: official files in a directory, or tfds."""

from __future__ import annotations

import os

import numpy as np

from nsr_tf.data import formats

BUNDLED_DIR = os.path.join(os.path.dirname(__file__), "bundled")
TFDS_NAMES = {"mnist": "mnist", "cifar10": "cifar10", "svhn": "svhn_cropped"}

# Sub-folder names accepted below ``data_dir`` for each dataset and format.
_CANDIDATES = {
    "mnist": (("", "mnist"), "mnist"),
    "cifar10_bin": (
        ("", "cifar-10-batches-bin", "cifar10/cifar-10-batches-bin"),
        "cifar10_bin",
    ),
    "cifar10_py": (
        ("", "cifar-10-batches-py", "cifar10/cifar-10-batches-py"),
        "cifar10_py",
    ),
    "svhn": (("", "svhn"), "svhn"),
}
_READERS = {
    "mnist": formats.read_mnist,
    "cifar10_bin": formats.read_cifar10_bin,
    "cifar10_py": formats.read_cifar10_py,
    "svhn": formats.read_svhn_mat,
}
_FORMATS = {
    "mnist": ("mnist",),
    "cifar10": ("cifar10_bin", "cifar10_py"),
    "svhn": ("svhn",),
}


def _all_files(fmt: str) -> tuple[str, ...]:
    return tuple(n for names in _FILE_LISTS[fmt].values() for n in names)


def locate_files(name: str, data_dir: str | None):
    """Finds official files of ``name`` in ``data_dir`` (never the bundle).

    A directory counts when it holds any official file of a format; which
    files of a split are missing is reported by :func:`read_files`.

    Returns:
        ``(format, directory)`` or ``None`` when no official files are found.
    """
    if not data_dir:
        return None
    for fmt in _FORMATS[name]:
        for sub in _CANDIDATES[fmt][0]:
            directory = os.path.join(data_dir, sub) if sub else data_dir
            if any(formats.find_file(directory, f) for f in _all_files(fmt)):
                return fmt, directory
    return None


def bundled_files(name: str):
    """``(format, directory)`` of the bundled copy (MNIST only), or None."""
    return (
        ("mnist", os.path.join(BUNDLED_DIR, "mnist"))
        if name == "mnist"
        else None
    )


def expected_files(name: str) -> str:
    """The official file names of ``name`` for messages."""
    return " or ".join(
        f"{_CANDIDATES[fmt][1]}: {', '.join(_all_files(fmt))}"
        for fmt in _FORMATS[name]
    )


_EXPECTED_SHAPES = {
    "mnist": (28, 28, 1),
    "cifar10_bin": (32, 32, 3),
    "cifar10_py": (32, 32, 3),
    "svhn": (32, 32, 3),
}
_LABEL_RANGES = {
    "mnist": (0, 9),
    "cifar10_bin": (0, 9),
    "cifar10_py": (0, 9),
    "svhn": (1, 10),
}
_FILE_LISTS = {
    "mnist": formats.MNIST_FILES,
    "cifar10_bin": formats.CIFAR10_BIN_FILES,
    "cifar10_py": formats.CIFAR10_PY_FILES,
    "svhn": {k: (v,) for k, v in formats.SVHN_FILES.items()},
}


def read_files(fmt: str, directory: str, split: str):
    """Reads the official split ``"train"`` or ``"test"`` of a located set.

    Raises:
        ValueError: when a file of the split is missing, truncated or
            corrupt, naming the files expected and the directory; nothing
            partly read is returned.
    """
    expected = ", ".join(_FILE_LISTS[fmt][split])
    missing = [
        f
        for f in _FILE_LISTS[fmt][split]
        if not formats.find_file(directory, f)
    ]
    if missing:
        raise ValueError(
            f"The official {split} files of {fmt} are incomplete in "
            f"`data_dir`={directory!r}: missing {', '.join(missing)} "
            f"(expected {expected})."
        )
    try:
        images, labels = _READERS[fmt](directory, split)
    except Exception as exc:  # noqa: BLE001  (any reader failure)
        raise ValueError(
            f"Could not read the official {split} files of {fmt} ({expected}) "
            f"in `data_dir`={directory!r}: {type(exc).__name__}: {exc}. The "
            "files may be missing, truncated or corrupt."
        ) from exc
    _check_arrays(fmt, split, directory, images, labels)
    return images, labels


def _check_arrays(fmt, split, directory, images, labels) -> None:
    """Shape, count and label-range checks of freshly read official files."""
    where = f"the official {split} files of {fmt} in {directory!r}"
    if images.ndim != 4 or images.shape[1:] != _EXPECTED_SHAPES[fmt]:
        raise ValueError(
            f"Images of {where} have shape {images.shape}; expected "
            f"[N, {', '.join(map(str, _EXPECTED_SHAPES[fmt]))}]."
        )
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(
            f"{where} hold {len(images)} images but {len(labels)} labels."
        )
    low, high = _LABEL_RANGES[fmt]
    if labels.min() < low or labels.max() > high:
        raise ValueError(
            f"Labels of {where} lie in [{labels.min()}, {labels.max()}]; "
            f"expected [{low}, {high}]: the file is corrupt."
        )


def read_tfds(name: str, split: str, data_dir: str | None):
    """Reads an official split through tensorflow-datasets (uint8 images).

    Raises:
        ValueError: when tensorflow-datasets cannot provide the dataset
            (e.g. it is not prepared in ``data_dir`` and cannot be
            downloaded), naming the tfds dataset and the directory.
    """
    import tensorflow_datasets as tfds

    try:
        dataset = tfds.load(
            TFDS_NAMES[name], split=split, data_dir=data_dir, as_supervised=True
        )
        images, labels = [], []
        for x, y in tfds.as_numpy(dataset.batch(4096)):
            images.append(x)
            labels.append(y)
    except Exception as exc:  # noqa: BLE001  (download, I/O, parse errors)
        raise ValueError(
            f"tensorflow-datasets could not load {TFDS_NAMES[name]!r} "
            f"(split {split!r}) with `data_dir`={data_dir!r}: "
            f"{type(exc).__name__}: {exc}. Without internet, prepare it in "
            "`data_dir` beforehand or pass a `data_dir` holding the "
            "official distribution files (source='files')."
        ) from exc
    return np.concatenate(images), np.concatenate(labels)
