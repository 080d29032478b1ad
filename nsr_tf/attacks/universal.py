"""One weight perturbation for a whole dataset (universal joint PGD).

``universal_joint_pgd`` is the one entry point of this attack.
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from nsr_tf import checks
from nsr_tf.attacks import _joint_core as core
from nsr_tf.attacks import _steps


def _build_universal(fwd, loss_fn, opts):
    want_x, want_w, relative, _ = opts

    def attack(xb, yb, mask, eps_x, eps_w, steps, ax, aw, cmin, cmax, seed):
        n_batches = tf.shape(xb)[0]
        if yb is None:
            yb = tf.map_fn(
                lambda b: tf.argmax(fwd.logits(b), axis=-1),
                xb,
                fn_output_signature=tf.int64,
            )
        base, x_adv, ws = core.start(
            fwd, xb, eps_x, eps_w, seed, cmin, cmax, opts
        )

        def step(i, x_adv, ws):
            acc = [tf.zeros_like(w) for w in ws]
            out = tf.TensorArray(xb.dtype, size=n_batches, element_shape=None)

            def inner(b, out, acc):
                xa, x0 = x_adv[b], xb[b]
                gx, gw = fwd.grads(
                    xa, yb[b], ws, loss_fn, want_x, want_w, mask=mask[b]
                )
                if want_x:
                    xa = core.box_step(xa, gx, ax, x0, eps_x)
                    xa = _steps.clip_range(xa, cmin, cmax)
                if want_w:
                    acc = [a + g for a, g in zip(acc, gw, strict=True)]
                return b + 1, out.write(b, xa), acc

            _, out, acc = tf.while_loop(
                lambda b, *_: b < n_batches, inner, (tf.constant(0), out, acc)
            )
            x_adv = tf.reshape(out.stack(), tf.shape(xb))
            if want_w:
                ws = [
                    core.box_step(w, g, aw, b, eps_w, relative)
                    for w, g, b in zip(ws, acc, base, strict=True)
                ]
            return i + 1, x_adv, ws

        _, x_adv, ws = tf.while_loop(
            lambda i, *_: i < steps, step, (tf.constant(0), x_adv, ws)
        )
        return core.finish(fwd, base, x_adv, ws)

    return attack


def _batched(v: tf.Tensor, n_batches: int, batch_size: int) -> tf.Tensor:
    pad = n_batches * batch_size - int(v.shape[0])
    paddings = [[0, pad]] + [[0, 0]] * (v.shape.rank - 1)
    v = tf.pad(v, paddings)
    return tf.reshape(v, [n_batches, batch_size, *v.shape[1:]])


def universal_joint_pgd(
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
    batch_size: int | None = None,
    loss_fn: Callable | None = None,
    seed: int | None = None,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Joint PGD with one weight perturbation shared by the whole dataset.

    Every step evaluates the gradients at the current (x~, W~) for all of
    ``x`` in batches of ``batch_size``, moves each input by its own sign
    step, and moves W~ by the sign of the weight gradient summed over the
    whole dataset. This equals ``joint_pgd`` on ``x`` as a single batch, with
    memory bounded by ``batch_size``. The whole loop is one ``tf.function``.

    Args:
        model: a Keras model or a loaded SavedModel.
        x: all inputs (a NumPy array or tensor of N examples).
        y: labels, or ``None`` for the clean predictions.
        eps_x: input budget (l_inf, >= 0).
        eps_w: weight budget (element-wise l_inf, >= 0).
        steps: number of steps (>= 1).
        step_size_x: input step.
        step_size_w: weight step.
        weights: variables to perturb (default: every kernel).
        include_bias: also perturb biases (default set only).
        relative: budgets ``eps_w * |w|``.
        rand_init: random start in both boxes.
        clip_min: optional lower data bound.
        clip_max: optional upper data bound.
        batch_size: examples per gradient evaluation (default: all of x).
        loss_fn: ``(labels, logits) -> per-example loss``.
        seed: seed of the random start.

    Returns:
        ``(x_adv, deltas)`` as for ``joint_pgd``; ``deltas`` apply to all of
        ``x``.

    Raises:
        ValueError: as ``joint_pgd``, and ``batch_size < 1``.

    Reference:
        Tsai et al. 2021, section 4.2; the per-test-set reading of the weight
        perturbation (spec/nsr_paper.md sections 2.6 and 5).
    """
    core.check_args(eps_x, eps_w, steps, step_size_x, step_size_w)
    x, y, loss_fn, targets = core.prepare(
        model, x, y, loss_fn, weights, include_bias, clip_min, clip_max
    )
    n = int(x.shape[0])
    if batch_size is None:
        batch_size = max(n, 1)
    checks.check_integer("batch_size", batch_size)
    batch_size = int(min(batch_size, max(n, 1)))
    n_batches = -(-n // batch_size)
    xb = _batched(x, n_batches, batch_size)
    yb = None if y is None else _batched(y, n_batches, batch_size)
    mask = _batched(tf.ones([n], x.dtype), n_batches, batch_size)
    opts = core.options(eps_x, eps_w, relative, rand_init)
    fn = core.compiled(
        model, targets, "universal", loss_fn, opts, _build_universal
    )
    args = core.budget_args(
        x, eps_x, eps_w, steps, step_size_x, step_size_w, clip_min, clip_max,
        seed,
    )  # fmt: skip
    x_adv, deltas = core.invoke(model, targets, fn, (xb, yb, mask, *args))
    x_adv = tf.reshape(x_adv, [n_batches * batch_size, *x.shape[1:]])[:n]
    return x_adv, deltas
