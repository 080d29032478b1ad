"""Compiling an attack once per model and running it eagerly or inlined.

An attack is written as ``build(get_model_fn) -> attack(*tensors)``; this
module wraps it in one ``tf.function`` per (model, settings), cached on the
model without keeping it alive, or inlines it inside an outer graph.
"""

import inspect
import weakref
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from nsr_tf import model_adapter

_CACHE = weakref.WeakKeyDictionary()


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
        fn = model_adapter.logits_fn(model_fn)
        return tf.function(build(lambda: fn), reduce_retracing=True)
    full_key = (sub, *key)
    fn = per_owner.get(full_key)
    if fn is None:
        ref = weakref.ref(owner)
        if sub is None:

            def get():
                return model_adapter.logits_fn(ref())

        else:
            func = sub

            def get():
                return model_adapter.logits_fn(func.__get__(ref()))

        fn = tf.function(build(get), reduce_retracing=True)
        per_owner[full_key] = fn
    return fn


def run(model_fn: Any, key: tuple, build: Callable, *args: Any) -> Any:
    """Runs an attack: compiled and cached when eager, inlined in a graph."""
    if tf.inside_function():
        fn = model_adapter.logits_fn(model_fn)
        return build(lambda: fn)(*args)
    return compiled(model_fn, key, build)(*args)
