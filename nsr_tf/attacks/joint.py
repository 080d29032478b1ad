"""Joint PGD on inputs and weights (the NSR paper's attack, section 4.2).

One weight perturbation per call: ``joint_pgd`` shares a single weight
perturbation across the batch it is given (the natural reading of the paper's
"input X"); accuracy under it therefore depends on the batch size.
``universal_joint_pgd`` (or ``joint_pgd(..., universal=True)``) computes one
weight perturbation for a whole dataset instead: every step sums the weight
gradient over all examples (processed in batches of ``batch_size``) while each
input still gets its own perturbation.
"""

import weakref
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nsr_tf import perturb
from nsr_tf.attacks import _common as C

_JOINT_CACHE = weakref.WeakKeyDictionary()


def _check_joint_args(eps_x, eps_w, steps, step_size_x, step_size_w):
    C.check_nonnegative("eps_x", eps_x)
    C.check_nonnegative("eps_w", eps_w)
    C.check_nonnegative("step_size_x", step_size_x)
    C.check_nonnegative("step_size_w", step_size_w)
    C.check_steps(steps)


def _static_zero(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and float(value) == 0.0


def weight_budgets(
    base: Sequence[tf.Tensor], eps_w: tf.Tensor, relative: bool
) -> list[tf.Tensor]:
    """Element-wise l_inf radii: ``eps_w`` or ``eps_w * |w|`` (relative)."""
    out = []
    for b in base:
        e = tf.cast(eps_w, b.dtype)
        out.append(e * tf.abs(b) if relative else e * tf.ones_like(b))
    return out


def _box_step_impl(value, grad, step, center, eps, relative):
    radius = eps * tf.abs(center) if relative else eps
    moved = value + step * tf.sign(grad)
    return tf.minimum(tf.maximum(moved, center - radius), center + radius)


# One fused kernel per tensor (XLA): the plain graph would make six passes
# over every weight per step, which costs as much as the model's own
# backward pass for wide MLPs on CPU.
_box_step_fused = tf.function(_box_step_impl, jit_compile=True)


def box_step(value, grad, step, center, eps, relative=False):
    """``clip(value + step * sign(grad), center - r, center + r)``.

    ``r = eps`` or ``eps * |center|`` (relative); element-wise.

    Reference: Tsai et al. 2021, section 4.2 (one joint-PGD sign step).
    """
    step = tf.cast(step, value.dtype)
    eps = tf.cast(eps, value.dtype)
    return _box_step_fused(value, grad, step, center, eps, bool(relative))


class _Forward:
    """Loss and gradients at (x, W~) for a Keras model or a SavedModel."""

    def __init__(self, model, targets):
        self.saved = perturb.is_saved_model(model)
        self.model = weakref.ref(model)
        self.targets = targets

    def base(self):
        return perturb.base_values(self.targets)

    def grads(self, x, labels, ws, loss_fn, want_x, want_w, mask=None):
        model = self.model()
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            if want_x:
                tape.watch(x)
            if self.saved:
                for t, w in zip(self.targets, ws, strict=True):
                    t.variable.assign(w)
                watched = [t.variable for t in self.targets]
                if want_w:
                    tape.watch(watched)
                logits = model.serve(x)
            else:
                watched = list(ws)
                if want_w:
                    tape.watch(watched)
                logits = perturb.call_with_weights(
                    model, x, self.targets, ws, training=False
                )
            loss = loss_fn(labels, logits)
            if mask is not None:
                loss = loss * tf.cast(mask, loss.dtype)
            loss = tf.reduce_sum(loss)
        sources = ([x] if want_x else []) + (watched if want_w else [])
        grads = tape.gradient(loss, sources) if sources else []
        grads = [
            tf.zeros_like(s) if g is None else g
            for g, s in zip(grads, sources, strict=True)
        ]
        gx = grads[0] if want_x else None
        gw = grads[1:] if want_x else grads
        return gx, gw

    def logits(self, x):
        model = self.model()
        if self.saved:
            return model.serve(x)
        return model(x, training=False)


def _init_point(value, radius, rand, seed, offset):
    if not rand:
        return value
    shape = tf.shape(value)
    if seed is None:
        u = tf.random.uniform(shape, -1.0, 1.0, dtype=value.dtype)
    else:
        pair = tf.stack(
            [tf.cast(seed, tf.int64), tf.constant(offset, tf.int64)]
        )
        u = tf.random.stateless_uniform(shape, pair, -1.0, 1.0, value.dtype)
    return value + radius * u


def _start(fwd, x, eps_x, eps_w, seed, clip_min, clip_max, opts):
    """Clean centres, and the starting x~ and W~ (random when asked)."""
    want_x, want_w, relative, rand_init = opts
    base = fwd.base()
    radii = weight_budgets(base, eps_w, relative)
    x_adv = C.clip_range(
        _init_point(x, eps_x, rand_init and want_x, seed, 0),
        clip_min,
        clip_max,
    )
    ws = [
        _init_point(b, r, rand_init and want_w, seed, i + 1)
        for i, (b, r) in enumerate(zip(base, radii, strict=True))
    ]
    return base, x_adv, ws


def _finish(fwd, base, x_adv, ws):
    """Restores a SavedModel's variables; returns ``(x_adv, W~ - W)``."""
    if fwd.saved:
        for t, b in zip(fwd.targets, base, strict=True):
            t.variable.assign(b)
    deltas = [tf.stop_gradient(w - b) for w, b in zip(ws, base, strict=True)]
    return tf.stop_gradient(x_adv), deltas


def _build_batch(fwd, loss_fn, opts):
    want_x, want_w, relative, _ = opts

    def attack(x, y, eps_x, eps_w, steps, ax, aw, clip_min, clip_max, seed):
        labels = tf.argmax(fwd.logits(x), axis=-1) if y is None else y
        base, x_adv, ws = _start(
            fwd, x, eps_x, eps_w, seed, clip_min, clip_max, opts
        )

        def body(i, x_adv, ws):
            gx, gw = fwd.grads(x_adv, labels, ws, loss_fn, want_x, want_w)
            if want_x:
                x_adv = box_step(x_adv, gx, ax, x, eps_x)
                x_adv = C.clip_range(x_adv, clip_min, clip_max)
            if want_w:
                ws = [
                    box_step(w, g, aw, b, eps_w, relative)
                    for w, g, b in zip(ws, gw, base, strict=True)
                ]
            return i + 1, x_adv, ws

        _, x_adv, ws = tf.while_loop(
            lambda i, *_: i < steps, body, (tf.constant(0), x_adv, ws)
        )
        return _finish(fwd, base, x_adv, ws)

    return attack


def _compiled(model, targets, kind, loss_fn, opts, build):
    """One ``tf.function`` per (model, targets, kind, loss, options)."""
    fwd = _Forward(model, targets)
    if tf.inside_function():
        return build(fwd, loss_fn, opts)
    full_key = (tuple(id(t.variable) for t in targets), kind, loss_fn, *opts)
    per_model = _JOINT_CACHE.setdefault(model, {})
    fn = per_model.get(full_key)
    if fn is None:
        fn = tf.function(build(fwd, loss_fn, opts), reduce_retracing=True)
        per_model[full_key] = fn
    return fn


def _options(eps_x, eps_w, relative, rand_init):
    """(want_x, want_w, relative, rand_init): static choices of the graph."""
    return (
        not _static_zero(eps_x),
        not _static_zero(eps_w),
        bool(relative),
        bool(rand_init),
    )


def _budget_args(
    x, eps_x, eps_w, steps, step_size_x, step_size_w, clip_min, clip_max, seed
):
    """The tensor arguments after the data: budgets, steps, clip, seed."""
    return (
        C.to_dtype(eps_x, x.dtype),
        C.to_dtype(eps_w, tf.float64),
        tf.cast(steps, tf.int32),
        C.to_dtype(step_size_x, x.dtype),
        C.to_dtype(step_size_w, tf.float64),
        C.optional_tensor(clip_min, x.dtype),
        C.optional_tensor(clip_max, x.dtype),
        None if seed is None else tf.constant(int(seed), tf.int64),
    )


def _invoke(model, targets, fn, args):
    """Runs ``fn``; a SavedModel's variables are restored even on error."""
    if perturb.is_saved_model(model):
        with perturb.perturbed_variables(targets):
            return fn(*args)
    return fn(*args)


def _prepare(model, x, y, loss_fn, weights, include_bias, clip_min, clip_max):
    """Checks the arguments; returns ``(x, y, loss_fn, targets)``."""
    if not (
        isinstance(model, keras.layers.Layer) or perturb.is_saved_model(model)
    ):
        raise ValueError(
            "`model` must be a Keras model or a loaded SavedModel (with a "
            f"`serve` endpoint). Received: model={model!r}"
        )
    x, y, loss_fn = C.prepare(x, y, loss_fn, clip_min, clip_max)
    targets = perturb.weight_targets(
        model, include_bias=include_bias, weights=weights
    )
    return x, y, loss_fn, targets


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
    universal: bool = False,
    batch_size: int | None = None,
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
    under it depends on the batch size). With ``universal=True`` one
    perturbation is computed for the whole of ``x`` (a dataset), processed in
    batches of ``batch_size`` (see ``universal_joint_pgd``).

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
        universal: one weight perturbation for the whole of ``x``.
        batch_size: batch size of the universal attack.
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
    if universal:
        from nsr_tf.attacks.universal import universal_joint_pgd

        return universal_joint_pgd(
            model, x, y, eps_x=eps_x, eps_w=eps_w, steps=steps,
            step_size_x=step_size_x, step_size_w=step_size_w,
            weights=weights, include_bias=include_bias, relative=relative,
            rand_init=rand_init, clip_min=clip_min, clip_max=clip_max,
            batch_size=batch_size, loss_fn=loss_fn, seed=seed,
        )  # fmt: skip
    _check_joint_args(eps_x, eps_w, steps, step_size_x, step_size_w)
    x, y, loss_fn, targets = _prepare(
        model, x, y, loss_fn, weights, include_bias, clip_min, clip_max
    )
    opts = _options(eps_x, eps_w, relative, rand_init)
    fn = _compiled(model, targets, "joint", loss_fn, opts, _build_batch)
    args = _budget_args(
        x, eps_x, eps_w, steps, step_size_x, step_size_w, clip_min, clip_max,
        seed,
    )  # fmt: skip
    return _invoke(model, targets, fn, (x, y, *args))
