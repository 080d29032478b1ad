"""The numerics every attack shares: loss, gradient, steps, projections.

Reference:
    Farnia, Zhang and Tse, "Generalizable Adversarial Training via Spectral
    Normalization", ICLR 2019 (``adversarial.py``), as summarized in
    ``spec/sn_paper.md`` section 4.
"""

from collections.abc import Callable

import tensorflow as tf

# Added to the per-example l2 norm in the SN paper (``adversarial.py``).
L2_NORM_FLOOR = 1e-24


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


def margin_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example logit margin ``max_{j != y} z_j - z_y``; integer or one-hot.

    The Carlini-Wagner margin: an attack that raises it past 0 flips the
    prediction. Unlike cross-entropy its gradient does not vanish when the
    softmax saturates (a confidently classified example keeps a nonzero
    gradient), so it checks robustness measured with cross-entropy. One-hot
    (or soft) labels name their arg-max class.

    Reference: Carlini and Wagner, "Towards Evaluating the Robustness of
    Neural Networks", IEEE S&P 2017 (their objective f_6 with kappa = 0).
    """
    logits = tf.convert_to_tensor(logits)
    classes = tf.shape(logits)[-1]
    if not labels.dtype.is_integer:
        labels = tf.argmax(labels, axis=-1)
    mask = tf.cast(tf.one_hot(tf.cast(labels, tf.int32), classes), tf.bool)
    true = tf.reduce_max(tf.where(mask, logits, logits.dtype.min), axis=-1)
    other = tf.reduce_max(tf.where(mask, logits.dtype.min, logits), axis=-1)
    return other - true


# Attack losses by name (the ``loss`` setting of evaluation scripts).
LOSSES = {"cross_entropy": softmax_cross_entropy, "margin": margin_loss}


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


def attack_labels(
    model_fn: Callable, x: tf.Tensor, y: tf.Tensor | None
) -> tf.Tensor:
    """``y``, or the clean predictions when ``y`` is None."""
    return predicted_labels(model_fn, x) if y is None else y
