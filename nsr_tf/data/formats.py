"""Readers for the official distribution formats of MNIST, CIFAR-10 and SVHN.

Each reader returns raw arrays exactly as distributed: ``uint8`` images in
NHWC layout and integer labels as stored in the files (SVHN keeps its label
10 for the digit 0; :mod:`nsr_tf.data.preprocess` maps it).
"""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR10_BIN_FILES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
CIFAR10_PY_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}

_IDX_DTYPES = {0x08: np.uint8}


def _open_maybe_gz(path: str):
    if os.path.exists(path):
        return open(path, "rb")
    if os.path.exists(path + ".gz"):
        return gzip.open(path + ".gz", "rb")
    raise FileNotFoundError(f"Neither {path} nor {path}.gz exists.")


def find_file(directory: str, name: str) -> bool:
    """True when ``name`` or ``name.gz`` exists in ``directory``."""
    path = os.path.join(directory, name)
    return os.path.exists(path) or os.path.exists(path + ".gz")


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (optionally gzipped: ``path`` or ``path + '.gz'``).

    Args:
        path: file path without or with the ``.gz`` suffix.

    Returns:
        The array with the shape stored in the header.

    Raises:
        ValueError: if the magic number is not an unsigned-byte IDX header.
    """
    if path.endswith(".gz"):
        path = path[: -len(".gz")]
    with _open_maybe_gz(path) as f:
        data = f.read()
    zero, dtype_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype_code not in _IDX_DTYPES:
        raise ValueError(
            f"`path` is not an unsigned-byte IDX file. Received: path={path}"
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    offset = 4 + 4 * ndim
    array = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if array.size != int(np.prod(shape)):
        raise ValueError(
            f"IDX file {path} holds {array.size} values, header says {shape}."
        )
    return array.reshape(shape)


def read_mnist(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Official MNIST idx files -> (uint8 [N, 28, 28, 1], uint8 [N])."""
    images_name, labels_name = MNIST_FILES[split]
    images = read_idx(os.path.join(directory, images_name))
    labels = read_idx(os.path.join(directory, labels_name))
    return images[..., np.newaxis], labels


def read_cifar10_bin(directory: str, split: str):
    """CIFAR-10 binary version: records of 1 label byte + 3072 CHW bytes."""
    images, labels = [], []
    for name in CIFAR10_BIN_FILES[split]:
        with open(os.path.join(directory, name), "rb") as f:
            raw = np.frombuffer(f.read(), dtype=np.uint8)
        if raw.size % 3073:
            raise ValueError(
                f"{name} is not a CIFAR-10 binary batch: {raw.size} bytes is "
                "not a multiple of 3073."
            )
        records = raw.reshape(-1, 3073)
        labels.append(records[:, 0])
        chw = records[:, 1:].reshape(-1, 3, 32, 32)
        images.append(chw.transpose(0, 2, 3, 1))
    return np.concatenate(images), np.concatenate(labels)


def read_cifar10_py(directory: str, split: str):
    """CIFAR-10 python version: pickled dicts with b'data' and b'labels'."""
    images, labels = [], []
    for name in CIFAR10_PY_FILES[split]:
        with open(os.path.join(directory, name), "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # noqa: S301 (official)
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[b"labels"], dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def read_svhn_mat(directory: str, split: str):
    """SVHN cropped digits ``*_32x32.mat``: X [32, 32, 3, N], y [N, 1]."""
    from scipy import io as scipy_io

    mat = scipy_io.loadmat(os.path.join(directory, SVHN_FILES[split]))
    images = np.transpose(mat["X"], (3, 0, 1, 2)).astype(np.uint8)
    labels = np.asarray(mat["y"]).reshape(-1)
    return images, labels
