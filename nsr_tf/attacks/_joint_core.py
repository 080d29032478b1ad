"""Machinery shared by the joint attacks (per batch and universal).

The forward pass at perturbed weights (through ``nsr_tf.perturb``), the
element-wise box step, the random start, the compiled-function cache and the
argument checks of ``joint_pgd`` and ``universal_joint_pgd``.

Reference:
    Tsai et al. 2021, section 4.2 (spec/nsr_paper.md section 2.6).
"""

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from nsr_tf import checks
from nsr_tf import model_adapter
from nsr_tf import perturb
from nsr_tf.attacks import _args
from nsr_tf.attacks import _steps

_JOINT_CACHE = weakref.WeakKeyDictionary()


def check_args(eps_x, eps_w, steps, step_size_x, step_size_w):
    """Raises ValueError for bad budgets, step sizes or step counts."""
    checks.check_nonnegative("eps_x", eps_x)
    checks.check_nonnegative("eps_w", eps_w)
    checks.check_nonnegative("step_size_x", step_size_x)
    checks.check_nonnegative("step_size_w", step_size_w)
    checks.check_integer("steps", steps)


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
        self.saved = model_adapter.kind(model) == model_adapter.SAVED_MODEL
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
        return model_adapter.logits_fn(self.model())(x)


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


def start(fwd, x, eps_x, eps_w, seed, clip_min, clip_max, opts):
    """Clean centres, and the starting x~ and W~ (random when asked)."""
    want_x, want_w, relative, rand_init = opts
    base = fwd.base()
    radii = weight_budgets(base, eps_w, relative)
    x_adv = _steps.clip_range(
        _init_point(x, eps_x, rand_init and want_x, seed, 0),
        clip_min,
        clip_max,
    )
    ws = [
        _init_point(b, r, rand_init and want_w, seed, i + 1)
        for i, (b, r) in enumerate(zip(base, radii, strict=True))
    ]
    return base, x_adv, ws


def finish(fwd, base, x_adv, ws):
    """Restores a SavedModel's variables; returns ``(x_adv, W~ - W)``."""
    if fwd.saved:
        for t, b in zip(fwd.targets, base, strict=True):
            t.variable.assign(b)
    deltas = [tf.stop_gradient(w - b) for w, b in zip(ws, base, strict=True)]
    return tf.stop_gradient(x_adv), deltas


def compiled(model, targets, kind, loss_fn, opts, build):
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


def options(eps_x, eps_w, relative, rand_init):
    """(want_x, want_w, relative, rand_init): static choices of the graph."""
    return (
        not _static_zero(eps_x),
        not _static_zero(eps_w),
        bool(relative),
        bool(rand_init),
    )


def budget_args(
    x, eps_x, eps_w, steps, step_size_x, step_size_w, clip_min, clip_max, seed
):
    """The tensor arguments after the data: budgets, steps, clip, seed."""
    return (
        _args.to_dtype(eps_x, x.dtype),
        _args.to_dtype(eps_w, tf.float64),
        tf.cast(steps, tf.int32),
        _args.to_dtype(step_size_x, x.dtype),
        _args.to_dtype(step_size_w, tf.float64),
        _args.optional_tensor(clip_min, x.dtype),
        _args.optional_tensor(clip_max, x.dtype),
        None if seed is None else tf.constant(int(seed), tf.int64),
    )


def invoke(model, targets, fn, args):
    """Runs ``fn``; a SavedModel's variables are restored even on error."""
    if model_adapter.kind(model) == model_adapter.SAVED_MODEL:
        with perturb.perturbed_variables(targets):
            return fn(*args)
    return fn(*args)


def prepare(model, x, y, loss_fn, weights, include_bias, clip_min, clip_max):
    """Checks the arguments; returns ``(x, y, loss_fn, targets)``."""
    model_adapter.kind(model, (model_adapter.KERAS, model_adapter.SAVED_MODEL))
    x, y, loss_fn = _args.prepare(model, x, y, loss_fn, clip_min, clip_max)
    targets = perturb.weight_targets(
        model, include_bias=include_bias, weights=weights
    )
    return x, y, loss_fn, targets
