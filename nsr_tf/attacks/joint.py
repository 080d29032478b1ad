"""Joint PGD on inputs and weights (the NSR paper's attack, section 4.2).

One weight perturbation per call: ``joint_pgd`` shares a single weight
perturbation across the batch it is given (the natural reading of the paper's
"input X"); accuracy under it therefore depends on the batch size.
``nsr_tf.attacks.universal_joint_pgd`` computes one weight perturbation for a
whole dataset instead.
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from nsr_tf.attacks import _joint_core as core
from nsr_tf.attacks import _steps


def _build_batch(fwd, loss_fn, opts):
    want_x, want_w, relative, _ = opts

    def attack(x, y, eps_x, eps_w, steps, ax, aw, clip_min, clip_max, seed):
        labels = tf.argmax(fwd.logits(x), axis=-1) if y is None else y
        base, x_adv, ws = core.start(
            fwd, x, eps_x, eps_w, seed, clip_min, clip_max, opts
        )

        def body(i, x_adv, ws):
            gx, gw = fwd.grads(x_adv, labels, ws, loss_fn, want_x, want_w)
            if want_x:
                x_adv = core.box_step(x_adv, gx, ax, x, eps_x)
                x_adv = _steps.clip_range(x_adv, clip_min, clip_max)
            if want_w:
                ws = [
                    core.box_step(w, g, aw, b, eps_w, relative)
                    for w, g, b in zip(ws, gw, base, strict=True)
                ]
            return i + 1, x_adv, ws

        _, x_adv, ws = tf.while_loop(
            lambda i, *_: i < steps, body, (tf.constant(0), x_adv, ws)
        )
        return core.finish(fwd, base, x_adv, ws)

    return attack


def joint_pgd(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    eps_x: Any,
    eps_w: Any,
    steps: int = 100,
    step_size_x: Any = 0.01,
    step_size_w: Any = 0.0005,
    weights: Sequence[Any] | None = None,
    include_bias: bool = False,
    relative: bool = False,
    rand_init: bool = False,
    clip_min: Any = None,
    clip_max: Any = None,
    loss_fn: Callable | None = None,
    seed: int | None = None,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Joint l_inf PGD on the inputs and the weights.

    Starting from the clean point, every step moves both at the same point:
    ``x~ <- clip(x~ + step_size_x * sign(grad_x CE), x - eps_x, x + eps_x)``
    and ``W~ <- clip(W~ + step_size_w * sign(grad_W CE), W - eps_w,
    W + eps_w)`` element-wise, for every targeted weight (for SN layers W is
    the effective kernel). ``eps_x=0`` is a weight-only attack, ``eps_w=0``
    an input-only one. The final iterate is returned.

    One weight perturbation is shared by the whole batch ``x`` (so accuracy
    under it depends on the batch size); ``universal_joint_pgd`` computes one
    perturbation for a whole dataset, processed in batches.

    The model is never mutated for Keras models (values are substituted); a
    loaded SavedModel has its variables assigned during the attack and
    restored bit-for-bit in a ``finally``, even if the attack raises.
    Can be called inside a ``tf.function`` for Keras models.

    Args:
        model: a Keras model, or a SavedModel loaded with
            ``tf.saved_model.load`` (endpoint ``serve``).
        x: input batch.
        y: labels; ``None`` attacks the clean predictions.
        eps_x: input budget (l_inf, >= 0).
        eps_w: weight budget (element-wise l_inf, >= 0).
        steps: number of steps (>= 1; the paper uses 100).
        step_size_x: input step (paper: 0.01).
        step_size_w: weight step (paper: 0.0005; 100 steps reach 0.05).
        weights: variables to perturb; default every kernel.
        include_bias: with the default set, also perturb the biases.
        relative: scale each weight's budget by its magnitude
            (``eps_w * |w|``, AWP-style).
        rand_init: start from a uniform point of both boxes.
        clip_min: optional lower data bound of the inputs.
        clip_max: optional upper data bound of the inputs.
        loss_fn: ``(labels, logits) -> per-example loss``; default CE.
        seed: seed of the random start (``None``: fresh draw).

    Returns:
        ``(x_adv, deltas)``: adversarial inputs and one weight perturbation
        per target of ``perturb.weight_targets(model, include_bias=...,
        weights=...)`` (evaluate with ``perturb.perturbed_call``).

    Raises:
        ValueError: negative budgets or steps, ``steps < 1``, mismatched
            x/y, ``weights`` not belonging to ``model``.

    Reference:
        Tsai et al. 2021, section 4.2 (spec/nsr_paper.md section 2.6).
    """
    core.check_args(eps_x, eps_w, steps, step_size_x, step_size_w)
    x, y, loss_fn, targets = core.prepare(
        model, x, y, loss_fn, weights, include_bias, clip_min, clip_max
    )
    opts = core.options(eps_x, eps_w, relative, rand_init)
    fn = core.compiled(model, targets, "joint", loss_fn, opts, _build_batch)
    args = core.budget_args(
        x, eps_x, eps_w, steps, step_size_x, step_size_w, clip_min, clip_max,
        seed,
    )  # fmt: skip
    return core.invoke(model, targets, fn, (x, y, *args))
