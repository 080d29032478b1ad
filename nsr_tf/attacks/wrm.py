"""Wasserstein risk minimization attack (Sinha et al.'s ascent)."""

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from nsr_tf import checks
from nsr_tf.attacks import _args
from nsr_tf.attacks import _compile
from nsr_tf.attacks import _steps


def _build(loss_fn: Callable) -> Callable:
    def build(get_model_fn):
        def attack(x, y, gamma, steps, clip_min, clip_max):
            model_fn = get_model_fn()
            labels = _steps.attack_labels(model_fn, x, y)
            e = 1.0 / (2.0 * gamma)
            g = _steps.input_gradient(model_fn, x, labels, loss_fn)
            x_adv = _steps.clip_range(x + e * g, clip_min, clip_max)

            def step(t, x_adv):
                g = _steps.input_gradient(model_fn, x_adv, labels, loss_fn)
                rate = tf.math.rsqrt(tf.cast(t + 2, x.dtype))
                x_adv = x_adv + rate * (e * g - (x_adv - x))
                return _steps.clip_range(x_adv, clip_min, clip_max)

            return _compile.iterate(steps, step, x_adv)

        return attack

    return build


def wrm(
    model_fn: Callable,
    x: Any,
    gamma: Any,
    *,
    steps: int = 15,
    y: Any = None,
    loss_fn: Callable | None = None,
    clip_min: Any = None,
    clip_max: Any = None,
) -> tf.Tensor:
    """WRM: gradient ascent on ``e * loss - 0.5 * ||x_adv - x||^2``.

    With ``e = 1 / (2 * gamma)``: an initial step ``x_adv = x + e * g(x)``,
    then for ``t = 0 .. steps-1``:
    ``x_adv += (t + 2)^(-1/2) * (e * g(x_adv) - (x_adv - x))``, with no
    projection (``steps + 1`` gradient evaluations; the SN paper uses 15).
    The optional data-range clip is applied after every step.

    Args:
        model_fn: callable ``x -> logits``.
        x: input batch.
        gamma: Lagrangian coefficient (> 0) of ``loss - gamma ||delta||^2``.
        steps: ascent steps after the initial one (>= 1).
        y: labels; ``None`` attacks the clean predictions.
        loss_fn: ``(labels, logits) -> per-example loss``.
        clip_min: optional lower data bound.
        clip_max: optional upper data bound.

    Returns:
        The adversarial batch.

    Raises:
        ValueError: ``gamma <= 0``, ``steps < 1``, mismatched x/y.

    Reference:
        Farnia et al. 2019, eq. (7); ``adversarial.py: wrm`` adapted from
        Sinha et al. 2018 (spec/sn_paper.md section 4 and section 12.1).
    """
    checks.check_positive("gamma", gamma)
    checks.check_integer("steps", steps)
    x, y, loss_fn = _args.prepare(model_fn, x, y, loss_fn, clip_min, clip_max)
    return _compile.run(
        model_fn,
        ("wrm", loss_fn),
        _build(loss_fn),
        x,
        y,
        _args.to_dtype(gamma, x.dtype),
        tf.cast(steps, tf.int32),
        _args.optional_tensor(clip_min, x.dtype),
        _args.optional_tensor(clip_max, x.dtype),
    )
