"""Checks and conversions of the arguments every attack shares.

Reference:
    Farnia, Zhang and Tse, ICLR 2019 (``adversarial.py``): ``y=None``
    attacks the model's own clean predictions (spec/sn_paper.md section 4).
"""

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nsr_tf import checks
from nsr_tf import model_adapter
from nsr_tf.attacks import _steps


def as_input(x: Any) -> tf.Tensor:
    """Converts ``x`` to a floating tensor (non-tensors take Keras floatx)."""
    if tf.is_tensor(x):
        if not x.dtype.is_floating:
            x = tf.cast(x, keras.config.floatx())
        return x
    return tf.convert_to_tensor(np.asarray(x), dtype=keras.config.floatx())


def check_xy(x: tf.Tensor, y: Any, x_name: str = "x") -> None:
    """Raises ValueError if x and y disagree on their (static) batch size."""
    if y is None:
        return
    nx = x.shape[0] if x.shape.rank else None
    y_shape = tuple(y.shape) if tf.is_tensor(y) else np.shape(y)
    ny = y_shape[0] if y_shape else None
    if nx is not None and ny is not None and int(nx) != int(ny):
        raise ValueError(
            f"`{x_name}` and `y` must have the same number of examples. "
            f"Received: {x_name}.shape={tuple(x.shape)}, y.shape={y_shape}"
        )


def check_clip(clip_min: Any, clip_max: Any) -> None:
    """Raises ValueError if concrete bounds are inverted."""
    if checks.is_number(clip_min) and checks.is_number(clip_max):
        if clip_min > clip_max:
            raise ValueError(
                "`clip_min` must be <= `clip_max`. Received: "
                f"clip_min={clip_min}, clip_max={clip_max}"
            )


def labels(model: Any, x: tf.Tensor, y: Any) -> tf.Tensor:
    """``y`` through the label normalizer; concrete class indices are
    checked against the model's number of logits.

    One-hot rows are kept (the loss may use soft labels).
    """
    y = checks.class_indices(y, keep_one_hot=True)
    if y.dtype.is_integer and hasattr(y, "numpy") and hasattr(x, "numpy"):
        k = model_adapter.num_classes(model, x)
        if k is not None and y.shape[0] and int(tf.reduce_max(y)) >= k:
            checks.class_indices(y, k)  # raises, naming `y` and the value
    return y


def prepare(
    model: Any,
    x: Any,
    y: Any,
    loss_fn: Callable | None,
    clip_min: Any,
    clip_max: Any,
) -> tuple[tf.Tensor, tf.Tensor | None, Callable]:
    """Checks and converts the arguments every input attack shares.

    Returns:
        ``(x, y, loss_fn)``: floating inputs, labels (or None) and the loss
        (softmax cross-entropy by default).

    Raises:
        ValueError: inverted clip bounds, x and y of different lengths, or
            bad labels.
    """
    check_clip(clip_min, clip_max)
    x = as_input(x)
    check_xy(x, y)
    y = None if y is None else labels(model, x, y)
    return x, y, loss_fn or _steps.softmax_cross_entropy


def to_dtype(value: Any, dtype: tf.DType) -> tf.Tensor:
    """``value`` as a ``dtype`` tensor (Python floats converted directly, so
    a float64 attack does not see float32-rounded budgets)."""
    if tf.is_tensor(value):
        return tf.cast(value, dtype)
    return tf.convert_to_tensor(np.asarray(value, dtype=dtype.as_numpy_dtype))


def optional_tensor(value: Any, dtype: tf.DType) -> tf.Tensor | None:
    """``None`` stays ``None``; anything else goes through ``to_dtype``."""
    return None if value is None else to_dtype(value, dtype)
