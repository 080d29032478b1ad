"""Fast gradient method (one normalized gradient step)."""

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from nsr_tf import checks
from nsr_tf.attacks import _args
from nsr_tf.attacks import _compile
from nsr_tf.attacks import _steps


def _build(norm: float, loss_fn: Callable) -> Callable:
    def build(get_model_fn):
        def attack(x, y, eps, clip_min, clip_max):
            model_fn = get_model_fn()
            labels = _steps.attack_labels(model_fn, x, y)
            g = _steps.input_gradient(model_fn, x, labels, loss_fn)
            x_adv = x + eps * _steps.steepest_direction(g, norm)
            return tf.stop_gradient(
                _steps.clip_range(x_adv, clip_min, clip_max)
            )

        return attack

    return build


def fgm(
    model_fn: Callable,
    x: Any,
    eps: Any,
    *,
    norm: Any,
    y: Any = None,
    loss_fn: Callable | None = None,
    clip_min: Any = None,
    clip_max: Any = None,
) -> tf.Tensor:
    """Fast gradient method: ``x + eps * d`` with d the steepest direction.

    ``d = g / (||g||_2 + 1e-24)`` per example for ``norm=2`` and
    ``d = sign(g)`` for ``norm=np.inf``, where ``g`` is the gradient of the
    summed per-example softmax cross-entropy.

    Args:
        model_fn: callable ``x -> logits`` (a Keras model is called with
            ``training=False``; a SavedModel's ``serve`` works too).
        x: input batch.
        eps: perturbation size (>= 0).
        norm: 2 or ``np.inf`` (``"inf"`` and ``float("inf")`` accepted).
        y: labels (integers or one-hot). ``None`` attacks the model's own
            clean predictions (the SN paper's convention).
        loss_fn: ``(labels, logits) -> per-example loss``; default softmax
            cross-entropy.
        clip_min: optional lower data bound (no clipping when ``None``).
        clip_max: optional upper data bound.

    Returns:
        The adversarial batch, same shape and dtype as ``x``.

    Raises:
        ValueError: negative ``eps``, unknown ``norm``, mismatched x/y.

    Reference:
        Farnia et al. 2019, eq. (5) and ``adversarial.py: fgm``
        (spec/sn_paper.md section 4).
    """
    norm = checks.parse_norm(norm)
    checks.check_nonnegative("eps", eps)
    x, y, loss_fn = _args.prepare(model_fn, x, y, loss_fn, clip_min, clip_max)
    key = ("fgm", norm, loss_fn)
    return _compile.run(
        model_fn,
        key,
        _build(norm, loss_fn),
        x,
        y,
        _args.to_dtype(eps, x.dtype),
        _args.optional_tensor(clip_min, x.dtype),
        _args.optional_tensor(clip_max, x.dtype),
    )
