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
_MARKERS = {
    "mnist": formats.MNIST_FILES["train"][0],
    "cifar10_bin": formats.CIFAR10_BIN_FILES["test"][0],
    "cifar10_py": formats.CIFAR10_PY_FILES["test"][0],
    "svhn": formats.SVHN_FILES["test"],
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


def locate_files(name: str, data_dir: str | None):
    """Finds official files of ``name`` in ``data_dir`` (or the bundle).

    Returns:
        ``(format, directory)`` or ``None`` when no official files are found.
    """
    roots = [data_dir] if data_dir else []
    if name == "mnist":
        roots.append(BUNDLED_DIR)
    for root in roots:
        for fmt in _FORMATS[name]:
            for sub in _CANDIDATES[fmt][0]:
                directory = os.path.join(root, sub) if sub else root
                if formats.find_file(directory, _MARKERS[fmt]):
                    return fmt, directory
    return None


def read_files(fmt: str, directory: str, split: str):
    """Reads the official split ``"train"`` or ``"test"`` of a located set."""
    return _READERS[fmt](directory, split)


def read_tfds(name: str, split: str, data_dir: str | None):
    """Reads an official split through tensorflow-datasets (uint8 images)."""
    import tensorflow_datasets as tfds

    dataset = tfds.load(
        TFDS_NAMES[name], split=split, data_dir=data_dir, as_supervised=True
    )
    images, labels = [], []
    for x, y in tfds.as_numpy(dataset.batch(4096)):
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)
