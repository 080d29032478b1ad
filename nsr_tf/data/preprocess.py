"""Preprocessing of the SN paper (spec ``sn_paper.md`` §1).

MNIST: pixels / 255, 28x28x1. CIFAR-10 and SVHN: pixels / 255, per-image
standardization over the full 32x32x3 image (standard deviation floored at
1/sqrt(3072), as ``tf.image.per_image_standardization``), then the center
crop ``[2:30, 2:30]`` to 28x28x3. SVHN label 10 becomes 0. No augmentation.
"""

from __future__ import annotations

import numpy as np

CROP = slice(2, 30)


def scale_unit(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1]."""
    return images.astype(np.float32) / np.float32(255.0)


def standardize_per_image(images: np.ndarray) -> np.ndarray:
    """Per-image standardization over all pixels and channels.

    Each image becomes (x - mean) / max(std, 1/sqrt(n)), n = H*W*C, computed
    in float64 and returned as float32.
    """
    x = images.astype(np.float64)
    axes = tuple(range(1, x.ndim))
    n = np.prod(x.shape[1:])
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    return ((x - mean) / np.maximum(std, 1.0 / np.sqrt(n))).astype(np.float32)


def center_crop(images: np.ndarray) -> np.ndarray:
    """32x32 -> 28x28 center crop ``[2:30, 2:30]``."""
    return images[:, CROP, CROP, :]


def preprocess(name: str, images: np.ndarray, labels: np.ndarray):
    """Raw official arrays -> (x float32 NHWC, y int64) as the paper uses."""
    x = scale_unit(images)
    y = labels.astype(np.int64)
    if name in ("cifar10", "svhn"):
        x = center_crop(standardize_per_image(x))
    if name == "svhn":
        y = np.where(y == 10, 0, y)
    return np.ascontiguousarray(x), y
