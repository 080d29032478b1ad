"""The one set of argument checks: numbers, integers, norms and labels.

Every public entry point of ``nsr_tf`` (attacks, evaluation, training
configuration, bounds, models) validates its arguments here, so that bad
input fails the same way everywhere: a ``ValueError`` that names the
argument and echoes the value, Keras style
(```eps` must be >= 0. Received: eps=-0.1``).

Values inside a ``tf.function`` (symbolic tensors) cannot be inspected;
they are passed through unchecked.
"""

import math
import numbers
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def is_number(value: Any) -> bool:
    """A real Python/NumPy scalar; booleans and strings are not numbers."""
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(
        value, (bool, np.bool_)
    )


def _is_tensor_like(value: Any) -> bool:
    return tf.is_tensor(value) or isinstance(
        value, (tf.Variable, keras.Variable)
    )


def _is_symbolic(value: Any) -> bool:
    """A tensor or variable whose value cannot be read here (in a graph)."""
    if not _is_tensor_like(value):
        return False
    return tf.inside_function() or not hasattr(value, "numpy")


def _number(name, value, minimum, strict, finite, allow_none):
    bound = f"{'>' if strict else '>='} {minimum:g}"
    if value is None and allow_none:
        return None
    if _is_symbolic(value):
        return value
    if is_number(value):
        arr, shown = np.float64(value), value
    elif _is_tensor_like(value) or isinstance(value, (np.ndarray, list, tuple)):
        arr = np.asarray(value)
        shown = arr if arr.dtype.kind in "iuf" else value
    else:
        arr, shown = None, value
    if arr is None or arr.dtype.kind not in "iuf":
        raise ValueError(
            f"`{name}` must be a number {bound}. Received: {name}={shown!r}"
        )
    low = np.isnan(arr) | (arr <= minimum if strict else arr < minimum)
    if np.any(low):
        raise ValueError(f"`{name}` must be {bound}. Received: {name}={shown}")
    if finite and np.any(np.isinf(arr)):
        raise ValueError(f"`{name}` must be finite. Received: {name}={shown}")
    return float(value) if arr.ndim == 0 and is_number(value) else value


def check_nonnegative(
    name: str, value: Any, *, finite: bool = True, allow_none: bool = False
) -> Any:
    """Checks that ``value`` is a number (or array of numbers) ``>= 0``.

    Args:
        name: the argument's name, used in the error message.
        value: a Python/NumPy number, a NumPy array, a list, or a tensor.
            Strings and booleans are not numbers.
        finite: also reject ``inf``.
        allow_none: accept (and return) ``None``.

    Returns:
        ``float(value)`` for a scalar, ``value`` itself otherwise.

    Raises:
        ValueError: naming ``name`` and echoing the value.
    """
    return _number(name, value, 0.0, False, finite, allow_none)


def check_positive(
    name: str, value: Any, *, finite: bool = True, allow_none: bool = False
) -> Any:
    """As :func:`check_nonnegative`, for values that must be ``> 0``."""
    return _number(name, value, 0.0, True, finite, allow_none)


def check_integer(name: str, value: Any, *, minimum: int = 1) -> Any:
    """Checks that ``value`` is an integer ``>= minimum`` and returns it.

    Integer tensors are accepted (symbolic ones unchecked); integer-valued
    floats (``2.0``) and booleans are not.

    Raises:
        ValueError: naming ``name`` and echoing the value.
    """
    if _is_symbolic(value):
        return value
    ok = isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )
    ok = ok or (tf.is_tensor(value) and value.dtype.is_integer)
    if not ok or int(value) < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. "
            f"Received: {name}={value!r}"
        )
    return value


_NORM_NAMES = {"2": 2.0, "l2": 2.0, "inf": math.inf, "linf": math.inf}
_NORM_NAMES["np.inf"] = math.inf


def parse_norm(norm: Any, name: str = "norm") -> float:
    """Returns ``2.0`` or ``math.inf`` for the norms the library supports.

    Accepted: the numbers 2 and ``inf`` and the strings ``"2"``, ``"l2"``,
    ``"inf"``, ``"linf"``, ``"np.inf"`` (any case).

    Raises:
        ValueError: for any other value.
    """
    if isinstance(norm, str):
        value = _NORM_NAMES.get(norm.strip().lower())
    elif is_number(norm) and (norm == 2 or norm == math.inf):
        value = float(norm)
    else:
        value = None
    if value is None:
        raise ValueError(
            f"`{name}` must be 2 or inf ('l2', 'linf', 'np.inf' also "
            f"accepted). Received: {name}={norm!r}"
        )
    return value


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    where = ",".join(map(str, index))
    return f"[{where}]={arr[index].item()!r}"


def class_indices(
    y: Any,
    num_classes: int | None = None,
    *,
    keep_one_hot: bool = False,
    name: str = "y",
) -> tf.Tensor:
    """The one label normalizer: class indices ``(B,)`` as ``int64``.

    Accepts integer indices ``(B,)`` or ``(B, 1)``, integer-valued floats
    (``1.0``), and one-hot (or probability) rows ``(B, K)``, which become
    their argmax unless ``keep_one_hot`` (then they are returned as a
    floating tensor for a soft-label loss). Concrete values are checked:
    fractional labels (``0.5``) and labels outside ``[0, num_classes)`` are
    rejected instead of being truncated or failing inside TensorFlow.

    Args:
        y: labels (array-like or tensor).
        num_classes: when known, labels must be ``< num_classes``.
        keep_one_hot: return ``(B, K)`` rows unchanged (as floats).
        name: the argument's name in error messages.

    Returns:
        An ``int64`` tensor of shape ``(B,)``, or the ``(B, K)`` rows.

    Raises:
        ValueError: non-numeric, fractional or out-of-range labels, or a
            rank other than 1 or 2.
    """
    if not tf.is_tensor(y):
        arr = np.asarray(y)
        if arr.dtype.kind not in "biuf":
            raise ValueError(
                f"`{name}` must hold class indices or one-hot rows. "
                f"Received: {name} of dtype {arr.dtype}"
            )
        y = tf.convert_to_tensor(arr)
    rank = y.shape.rank
    if rank == 2 and y.shape[-1] is not None and y.shape[-1] > 1:
        if keep_one_hot:
            return y if y.dtype.is_floating else tf.cast(y, tf.float32)
        return tf.argmax(y, axis=-1)
    if rank not in (None, 1, 2):
        raise ValueError(
            f"`{name}` must be class indices (B,) or one-hot rows (B, K). "
            f"Received: {name}.shape={tuple(y.shape)}"
        )
    y = tf.reshape(y, [-1])
    if not _is_symbolic(y):
        arr = y.numpy()
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(bad):
            raise ValueError(
                f"`{name}` must hold integer class indices. Received: "
                f"{name}{_first_bad(arr, bad)}"
            )
        high = np.inf if num_classes is None else num_classes
        bad = (arr < 0) | (arr >= high)
        if np.any(bad):
            rng = f"in [0, {num_classes})" if num_classes else ">= 0"
            raise ValueError(
                f"`{name}` must hold class indices {rng}. Received: "
                f"{name}{_first_bad(arr, bad)}"
            )
    return tf.cast(y, tf.int64)


__all__ = [
    "check_integer",
    "check_nonnegative",
    "check_positive",
    "is_number",
    "class_indices",
    "parse_norm",
]
