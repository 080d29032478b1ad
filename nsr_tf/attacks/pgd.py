"""Projected gradient method (the SN paper's PGM)."""

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from nsr_tf import checks
from nsr_tf.attacks import _args
from nsr_tf.attacks import _compile
from nsr_tf.attacks import _steps


def random_start(
    x: tf.Tensor, eps: tf.Tensor, norm: float, seed: tf.Tensor | None
) -> tf.Tensor:
    """A uniform draw from the ``norm`` ball of radius ``eps`` (per example).

    ``seed=None`` uses TensorFlow's stateful generator (a fresh draw per
    call); an integer seed gives a deterministic stateless draw.
    """
    shape = tf.shape(x)

    def uniform(minval, maxval, offset):
        if seed is None:
            return tf.random.uniform(shape, minval, maxval, dtype=x.dtype)
        pair = tf.stack(
            [tf.cast(seed, tf.int64), tf.constant(offset, tf.int64)]
        )
        return tf.random.stateless_uniform(
            shape, pair, minval, maxval, dtype=x.dtype
        )

    if norm != 2.0:
        return eps * uniform(-1.0, 1.0, 0)
    if seed is None:
        gauss = tf.random.normal(shape, dtype=x.dtype)
        radius_u = tf.random.uniform([shape[0]], dtype=x.dtype)
    else:
        pair = tf.stack([tf.cast(seed, tf.int64), tf.constant(1, tf.int64)])
        gauss = tf.random.stateless_normal(shape, pair, dtype=x.dtype)
        radius_u = tf.random.stateless_uniform(
            [shape[0]], pair + 1, dtype=x.dtype
        )
    dim = tf.cast(tf.reduce_prod(shape[1:]), x.dtype)
    radius = eps * tf.pow(radius_u, 1.0 / dim)
    radius = tf.reshape(radius, [-1] + [1] * (x.shape.rank - 1))
    return radius * _steps.l2_direction(gauss)


def _build(norm: float, loss_fn: Callable, rand_init: bool) -> Callable:
    def build(get_model_fn):
        def attack(x, y, eps, step_size, steps, clip_min, clip_max, seed):
            model_fn = get_model_fn()
            labels = _steps.attack_labels(model_fn, x, y)
            x_adv = x
            if rand_init:
                x_adv = _steps.clip_range(
                    x + random_start(x, eps, norm, seed), clip_min, clip_max
                )

            def step(_, x_adv):
                g = _steps.input_gradient(model_fn, x_adv, labels, loss_fn)
                return _steps.pgd_step(
                    x_adv, g, x, eps, step_size, clip_min, clip_max, norm
                )

            return _compile.iterate(steps, step, x_adv)

        return attack

    return build


def pgd(
    model_fn: Callable,
    x: Any,
    eps: Any,
    *,
    norm: Any,
    steps: int,
    step_size: Any,
    y: Any = None,
    rand_init: bool = False,
    loss_fn: Callable | None = None,
    clip_min: Any = None,
    clip_max: Any = None,
    seed: int | None = None,
) -> tf.Tensor:
    """Projected gradient method: ``steps`` normalized steps plus projection.

    Each step: ``x_adv += step_size * d`` with ``d = g/(||g||_2 + 1e-24)``
    (l2, per example) or ``sign(g)`` (l_inf), then projection onto the ball
    (l2: ``delta / max(1, ||delta|| / eps)``; l_inf: clip to
    ``[x - eps, x + eps]``), then the optional data-range clip. The SN paper
    uses ``steps=15``, ``step_size=2 * eps / 15``, no random start.

    Args:
        model_fn: callable ``x -> logits`` (Keras models are called with
            ``training=False``).
        x: input batch.
        eps: ball radius (>= 0).
        norm: 2 or ``np.inf``.
        steps: number of gradient steps (>= 1).
        step_size: step length (>= 0).
        y: labels; ``None`` attacks the clean predictions.
        rand_init: start from a uniform point of the ball (default off, as
            in the SN paper).
        loss_fn: ``(labels, logits) -> per-example loss``.
        clip_min: optional lower data bound.
        clip_max: optional upper data bound.
        seed: seed of the random start; ``None`` draws a fresh one per call.

    Returns:
        The adversarial batch (same shape and dtype as ``x``).

    Raises:
        ValueError: negative ``eps``/``step_size``, unknown ``norm``,
            ``steps < 1``, mismatched x/y.

    Reference:
        Farnia et al. 2019, eq. (6) and ``adversarial.py: pgm``
        (spec/sn_paper.md section 4).
    """
    norm = checks.parse_norm(norm)
    checks.check_nonnegative("eps", eps)
    checks.check_nonnegative("step_size", step_size)
    checks.check_integer("steps", steps)
    x, y, loss_fn = _args.prepare(model_fn, x, y, loss_fn, clip_min, clip_max)
    key = ("pgd", norm, loss_fn, bool(rand_init))
    seed_t = None if seed is None else tf.constant(int(seed), tf.int64)
    return _compile.run(
        model_fn,
        key,
        _build(norm, loss_fn, bool(rand_init)),
        x,
        y,
        _args.to_dtype(eps, x.dtype),
        _args.to_dtype(step_size, x.dtype),
        tf.cast(steps, tf.int32),
        _args.optional_tensor(clip_min, x.dtype),
        _args.optional_tensor(clip_max, x.dtype),
        seed_t,
    )


__all__ = ["pgd", "random_start"]
