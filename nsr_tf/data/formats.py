"""Readers for the official distribution formats of MNIST, CIFAR-10 and SVHN.

Each reader returns raw arrays exactly as distributed: ``uint8`` images in
NHWC layout and integer labels as stored in the files (SVHN keeps its label
10 for the digit 0; :mod:`nsr_tf.data.preprocess` maps it).

Every file is checked against the official distribution (spec
``data_checksums.md``) before use, and a mismatch is a ``ValueError`` that
names the file, the expected and the received size:

* MNIST idx: magic number (``0x803`` images, ``0x801`` labels), image
  dimensions 28x28, the official example count (60,000 / 10,000) and a
  content size of exactly header + count x record bytes. Gzipped files are
  checked after decompression (their compressed size depends on the
  compressor, their content does not).
* CIFAR-10 binary: the format has no header, so each batch must hold
  exactly 10,000 records of 3,073 bytes (30,730,000 bytes).
* SVHN ``.mat``: ``X`` of shape (32, 32, 3, N) in uint8 and ``y`` of shape
  (N, 1) with the official N (73,257 / 26,032). The byte size of a ``.mat``
  container is not checked: it depends on the MATLAB writer.

The official counts live in :data:`OFFICIAL_COUNTS`; tests of the readers on
small synthetic files replace them there.

The CIFAR-10 "python" version is a pickle, and unpickling a file runs any
code it holds: it is refused, pointing to the binary version.
"""

from __future__ import annotations

import gzip
import os

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
CIFAR10_RECORD_BYTES = 3073  # 1 label byte + 3 x 32 x 32 pixel bytes
# Examples per official file: MNIST and SVHN per split, CIFAR-10 per batch.
OFFICIAL_COUNTS = {
    "mnist": {"train": 60000, "test": 10000},
    "cifar10_batch": 10000,
    "svhn": {"train": 73257, "test": 26032},
}


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
    expected = offset + int(np.prod(shape))
    if len(data) != expected:
        raise ValueError(
            f"IDX file {path} is truncated or padded: its header (shape "
            f"{shape}) implies {expected} bytes, received {len(data)} bytes."
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=offset)
    return array.reshape(shape)


def _check_mnist(name: str, array: np.ndarray, shape: tuple) -> None:
    if array.shape != shape:
        raise ValueError(
            f"{name} is not the official MNIST file: its header gives shape "
            f"{array.shape}; expected {shape}."
        )


def read_mnist(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Official MNIST idx files -> (uint8 [N, 28, 28, 1], uint8 [N])."""
    images_name, labels_name = MNIST_FILES[split]
    n = OFFICIAL_COUNTS["mnist"][split]
    images = read_idx(os.path.join(directory, images_name))
    _check_mnist(images_name, images, (n, 28, 28))
    labels = read_idx(os.path.join(directory, labels_name))
    _check_mnist(labels_name, labels, (n,))
    return images[..., np.newaxis], labels


def read_cifar10_bin(directory: str, split: str):
    """CIFAR-10 binary version: records of 1 label byte + 3072 CHW bytes."""
    images, labels = [], []
    count = OFFICIAL_COUNTS["cifar10_batch"]
    for name in CIFAR10_BIN_FILES[split]:
        with open(os.path.join(directory, name), "rb") as f:
            raw = np.frombuffer(f.read(), dtype=np.uint8)
        if raw.size != count * CIFAR10_RECORD_BYTES:
            raise ValueError(
                f"{name} is not an official CIFAR-10 binary batch: expected "
                f"{count * CIFAR10_RECORD_BYTES} bytes ({count} records of "
                f"{CIFAR10_RECORD_BYTES} bytes), received {raw.size} bytes "
                f"({raw.size / CIFAR10_RECORD_BYTES:g} records)."
            )
        records = raw.reshape(-1, CIFAR10_RECORD_BYTES)
        labels.append(records[:, 0])
        chw = records[:, 1:].reshape(-1, 3, 32, 32)
        images.append(chw.transpose(0, 2, 3, 1))
    return np.concatenate(images), np.concatenate(labels)


def read_cifar10_py(directory: str, split: str):
    """Refuses the CIFAR-10 python version: its batches are pickles.

    Unpickling runs whatever code a file holds, so these files are never
    opened. The binary version holds the same data.

    Raises:
        ValueError: always, pointing to the binary version.
    """
    raise ValueError(
        f"The CIFAR-10 python version in {directory!r} "
        f"({', '.join(CIFAR10_PY_FILES[split])}) is a pickle, which nsr_tf "
        "never loads (unpickling a file runs any code it holds). Download "
        "the binary version instead (cifar-10-binary.tar.gz, the folder "
        "cifar-10-batches-bin) from https://www.cs.toronto.edu/~kriz/cifar.html"
        " and pass its parent directory as `data_dir`."
    )


def read_svhn_mat(directory: str, split: str):
    """SVHN cropped digits ``*_32x32.mat``: X [32, 32, 3, N], y [N, 1]."""
    from scipy import io as scipy_io

    name = SVHN_FILES[split]
    mat = scipy_io.loadmat(os.path.join(directory, name))
    n = OFFICIAL_COUNTS["svhn"][split]
    for key, shape in (("X", (32, 32, 3, n)), ("y", (n, 1))):
        got = getattr(mat.get(key), "shape", None)
        if got != shape:
            raise ValueError(
                f"{name} is not the official SVHN file: `{key}` has shape "
                f"{got}; expected {shape}."
            )
    if mat["X"].dtype != np.uint8:
        raise ValueError(
            f"{name} is not the official SVHN file: `X` has dtype "
            f"{mat['X'].dtype}; expected uint8."
        )
    images = np.transpose(mat["X"], (3, 0, 1, 2))
    labels = np.asarray(mat["y"]).reshape(-1)
    return images, labels
