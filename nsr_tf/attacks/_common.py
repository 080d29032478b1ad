"""Shared pieces of every attack: validation, loss, steps and projections.

Reference:
    Farnia, Zhang and Tse, "Generalizable Adversarial Training via Spectral
    Normalization", ICLR 2019 (``adversarial.py``), as summarized in
    ``spec/sn_paper.md`` section 4.
"""

import inspect
import numbers
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

# Added to the per-example l2 norm in the SN paper (``adversarial.py``).
L2_NORM_FLOOR = 1e-24

_CACHE = weakref.WeakKeyDictionary()


def normalize_norm(norm: Any) -> float:
    """Returns 2.0 or ``np.inf``; raises ValueError for any other norm."""
    if isinstance(norm, str):
        key = norm.strip().lower()
        if key in ("inf", "linf", "np.inf"):
            return np.inf
        if key in ("2", "l2"):
            return 2.0
    elif isinstance(norm, numbers.Real) and not isinstance(norm, bool):
        if norm == 2:
            return 2.0
        if np.isinf(norm) and norm > 0:
            return np.inf
    raise ValueError(
        f"`norm` must be one of 2, np.inf, 'inf'. Received: norm={norm!r}"
    )


def _is_python_number(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.generic)) and not isinstance(
        value, bool
    )


def check_nonnegative(name: str, value: Any) -> None:
    """Raises ValueError if a concrete ``value`` is negative or NaN.

    Symbolic tensors (inside a ``tf.function``) are not checked.
    """
    if value is None:
        raise ValueError(f"`{name}` must be >= 0. Received: {name}=None")
    if _is_python_number(value):
        if np.isnan(value) or value < 0:
            raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
    elif isinstance(value, np.ndarray) or (
        tf.is_tensor(value) and hasattr(value, "numpy")
    ):
        arr = np.asarray(value)
        if np.any(np.isnan(arr)) or np.any(arr < 0):
            raise ValueError(f"`{name}` must be >= 0. Received: {name}={arr}")


def check_positive(name: str, value: Any) -> None:
    """Raises ValueError if a concrete ``value`` is not > 0."""
    if _is_python_number(value) and not value > 0:
        raise ValueError(f"`{name}` must be > 0. Received: {name}={value}")


def check_steps(steps: Any, name: str = "steps") -> None:
    """Raises ValueError unless ``steps`` is an integer >= 1."""
    if tf.is_tensor(steps) and not hasattr(steps, "numpy"):
        return
    if (
        isinstance(steps, bool)
        or not isinstance(steps, (numbers.Integral, np.integer))
        and not (tf.is_tensor(steps) and steps.dtype.is_integer)
    ):
        raise ValueError(
            f"`{name}` must be an integer >= 1. Received: {name}={steps!r}"
        )
    if int(steps) < 1:
        raise ValueError(
            f"`{name}` must be an integer >= 1. Received: {name}={steps!r}"
        )


def as_input(x: Any) -> tf.Tensor:
    """Converts ``x`` to a floating tensor (non-tensors take Keras floatx)."""
    if tf.is_tensor(x):
        if not x.dtype.is_floating:
            x = tf.cast(x, keras.config.floatx())
        return x
    return tf.convert_to_tensor(np.asarray(x), dtype=keras.config.floatx())


def as_labels(y: Any) -> tf.Tensor:
    """Converts labels to a tensor: integers -> int64, one-hot kept floating."""
    y = y if tf.is_tensor(y) else tf.convert_to_tensor(np.asarray(y))
    if y.dtype.is_integer:
        return tf.cast(y, tf.int64)
    if y.shape.rank == 1:  # float class indices
        return tf.cast(y, tf.int64)
    return y


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


def as_model_fn(model_fn: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    """Keras model -> ``model(x, training=False)``; SavedModel -> ``serve``."""
    if isinstance(model_fn, keras.layers.Layer):
        model = model_fn
        return lambda x: model(x, training=False)
    if not callable(model_fn) and callable(getattr(model_fn, "serve", None)):
        return model_fn.serve  # a SavedModel exported by Keras
    if not callable(model_fn):
        raise ValueError(
            f"`model_fn` must be callable (x -> logits). Received: "
            f"model_fn={model_fn!r}"
        )
    return model_fn


def softmax_cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example softmax cross-entropy; integer or one-hot ``labels``.

    Reference: spec/sn_paper.md section 4 (loss of every attack).
    """
    logits = tf.convert_to_tensor(logits)
    if labels.dtype.is_integer:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits
        )
    return tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, logits.dtype), logits=logits
    )


def predicted_labels(model_fn: Callable, x: tf.Tensor) -> tf.Tensor:
    """argmax of the clean logits (the SN paper's ``y=None`` convention)."""
    return tf.argmax(model_fn(x), axis=-1)


def input_gradient(
    model_fn: Callable, x: tf.Tensor, labels: tf.Tensor, loss_fn: Callable
) -> tf.Tensor:
    """Gradient of the summed per-example loss with respect to ``x``."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(loss_fn(labels, model_fn(x)))
    grad = tape.gradient(loss, x)
    if grad is None:
        grad = tf.zeros_like(x)
    return tf.stop_gradient(grad)


def _batch_axes(v: tf.Tensor) -> list[int]:
    return list(range(1, v.shape.rank))


def _work_dtype(dtype: tf.DType) -> tf.DType:
    """float16/bfloat16 -> float32 (room for 1 / 1e-24); others unchanged."""
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype


def l2_norm(v: tf.Tensor) -> tf.Tensor:
    """Per-example l2 norm (float64, shape [batch, 1, ..., 1]) without
    under/overflow.

    Inputs of 32 bits or fewer are squared and summed in float64, where the
    square of every float32 number is a normal number (float32 squares of
    entries below ~1e-19 underflow to 0, above ~1e19 overflow): one fused
    pass. float64 inputs are scaled by their per-example max-abs instead.
    """
    axes = _batch_axes(v)
    if v.dtype != tf.float64:
        v = tf.cast(v, tf.float64)
        return tf.sqrt(tf.reduce_sum(tf.square(v), axis=axes, keepdims=True))
    scale = tf.reduce_max(tf.abs(v), axis=axes, keepdims=True)
    safe = tf.where(scale > 0, scale, tf.ones_like(scale))
    ssq = tf.reduce_sum(tf.square(v / safe), axis=axes, keepdims=True)
    return scale * tf.sqrt(ssq)


def l2_direction(g: tf.Tensor) -> tf.Tensor:
    """``g / (||g||_2 + 1e-24)`` per example, as in the SN paper's FGM/PGM.

    The norm is taken in float64 (see ``l2_norm``) and its reciprocal,
    at most 1e24, scales ``g`` in at least float32 (1e-24 underflows to 0 in
    float16, which would make an all-zero gradient give 0/0); the result is
    cast back to ``g.dtype``.

    Reference: spec/sn_paper.md section 4, FGM: d = g / (||g||_2 + 1e-24).
    """
    inv = 1.0 / (l2_norm(g) + L2_NORM_FLOOR)
    work = _work_dtype(g.dtype)
    d = tf.cast(g, work) * tf.cast(inv, work)
    return tf.cast(d, g.dtype)


def steepest_direction(g: tf.Tensor, norm: float) -> tf.Tensor:
    """sign(g) for l_inf, normalized g for l2."""
    if norm == 2.0:
        return l2_direction(g)
    return tf.sign(g)


def project(
    x_adv: tf.Tensor, x0: tf.Tensor, eps: tf.Tensor, norm: float
) -> tf.Tensor:
    """Projects ``x_adv`` onto the ``norm`` ball of radius ``eps`` around x0.

    l_inf clips x_adv into [x0 - eps, x0 + eps]; l2 rescales the perturbation
    per example by min(1, eps / ||delta||) (equal to the SN paper's
    ``delta / max(1, ||delta|| / eps)``, written so that eps = 0 is exact).
    """
    if norm != 2.0:
        return tf.clip_by_value(x_adv, x0 - eps, x0 + eps)
    delta = x_adv - x0
    n = l2_norm(delta)
    eps64 = tf.cast(eps, tf.float64)
    safe = tf.where(n > 0, n, tf.ones_like(n))
    factor = tf.where(n > eps64, eps64 / safe, tf.ones_like(n))
    return x0 + delta * tf.cast(factor, delta.dtype)


def clip_range(
    x: tf.Tensor, clip_min: tf.Tensor | None, clip_max: tf.Tensor | None
) -> tf.Tensor:
    """Clips to the data range when bounds are given."""
    if clip_min is not None:
        x = tf.maximum(x, clip_min)
    if clip_max is not None:
        x = tf.minimum(x, clip_max)
    return x


def to_dtype(value: Any, dtype: tf.DType) -> tf.Tensor:
    """``value`` as a ``dtype`` tensor (Python floats converted directly, so
    a float64 attack does not see float32-rounded budgets)."""
    if tf.is_tensor(value):
        return tf.cast(value, dtype)
    return tf.convert_to_tensor(np.asarray(value, dtype=dtype.as_numpy_dtype))


def _pgd_step_impl(x_adv, grad, x0, eps, step_size, clip_min, clip_max, norm):
    x_adv = x_adv + step_size * steepest_direction(grad, norm)
    return clip_range(project(x_adv, x0, eps, norm), clip_min, clip_max)


# Step, projection and clip fused into one XLA kernel: as separate ops they
# cost several percent of a small model's forward+backward pass on CPU.
_pgd_step_fused = tf.function(_pgd_step_impl, jit_compile=True)


def pgd_step(
    x_adv: tf.Tensor,
    grad: tf.Tensor,
    x0: tf.Tensor,
    eps: tf.Tensor,
    step_size: tf.Tensor,
    clip_min: tf.Tensor | None,
    clip_max: tf.Tensor | None,
    norm: float,
) -> tf.Tensor:
    """One PGD step: normalized step, projection onto the ball, data clip.

    Reference: spec/sn_paper.md section 4 (PGM step and projection).
    """
    return _pgd_step_fused(
        x_adv, grad, x0, eps, step_size, clip_min, clip_max, norm
    )


def optional_tensor(value: Any, dtype: tf.DType) -> tf.Tensor | None:
    return None if value is None else to_dtype(value, dtype)


def check_clip(clip_min: Any, clip_max: Any) -> None:
    """Raises ValueError if concrete bounds are inverted."""
    if _is_python_number(clip_min) and _is_python_number(clip_max):
        if clip_min > clip_max:
            raise ValueError(
                "`clip_min` must be <= `clip_max`. Received: "
                f"clip_min={clip_min}, clip_max={clip_max}"
            )


def prepare(
    x: Any, y: Any, loss_fn: Callable | None, clip_min: Any, clip_max: Any
) -> tuple[tf.Tensor, tf.Tensor | None, Callable]:
    """Checks and converts the arguments every input attack shares.

    Returns:
        ``(x, y, loss_fn)``: floating inputs, labels (or None) and the loss
        (softmax cross-entropy by default).

    Raises:
        ValueError: inverted clip bounds, or x and y of different lengths.
    """
    check_clip(clip_min, clip_max)
    x = as_input(x)
    check_xy(x, y)
    y = None if y is None else as_labels(y)
    return x, y, loss_fn or softmax_cross_entropy


def attack_labels(
    model_fn: Callable, x: tf.Tensor, y: tf.Tensor | None
) -> tf.Tensor:
    """``y``, or the clean predictions when ``y`` is None."""
    return predicted_labels(model_fn, x) if y is None else y


def iterate(
    steps: tf.Tensor,
    step: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    x_adv: tf.Tensor,
) -> tf.Tensor:
    """``x_adv = step(t, x_adv)`` for ``t = 0 .. steps-1`` in one
    ``tf.while_loop``; the result carries no gradient."""
    _, x_adv = tf.while_loop(
        lambda t, _: t < steps,
        lambda t, xa: (t + 1, step(t, xa)),
        (tf.constant(0), x_adv),
    )
    return tf.stop_gradient(x_adv)


def _cache_owner(model_fn: Any) -> tuple[Any, Any]:
    """The object to cache on, plus a sub-key (bound methods -> their self)."""
    if inspect.ismethod(model_fn):
        return model_fn.__self__, model_fn.__func__
    return model_fn, None


def compiled(
    model_fn: Any, key: tuple, build: Callable[[Callable], Callable]
) -> Callable:
    """Returns ``build(get_model_fn)`` compiled once per (model_fn, key).

    ``build`` receives a zero-argument callable returning the model function
    (it holds the model only weakly, so the cache never keeps a model alive)
    and returns the Python implementation, which is wrapped in one
    ``tf.function``.  Inside an outer ``tf.function`` the caller should use
    the Python implementation directly instead (see ``run``).
    """
    owner, sub = _cache_owner(model_fn)
    try:
        per_owner = _CACHE.setdefault(owner, {})
    except TypeError:  # not weak-referenceable: compile, do not cache
        fn = as_model_fn(model_fn)
        return tf.function(build(lambda: fn), reduce_retracing=True)
    full_key = (sub, *key)
    fn = per_owner.get(full_key)
    if fn is None:
        ref = weakref.ref(owner)
        if sub is None:

            def get():
                return as_model_fn(ref())

        else:
            func = sub

            def get():
                return as_model_fn(func.__get__(ref()))

        fn = tf.function(build(get), reduce_retracing=True)
        per_owner[full_key] = fn
    return fn


def run(model_fn: Any, key: tuple, build: Callable, *args: Any) -> Any:
    """Runs an attack: compiled and cached when eager, inlined in a graph."""
    if tf.inside_function():
        fn = as_model_fn(model_fn)
        return build(lambda: fn)(*args)
    return compiled(model_fn, key, build)(*args)
