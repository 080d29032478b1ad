"""The one answer to "Keras model, SavedModel, or a plain callable?".

Attacks, evaluation, the weight-perturbation mechanism (``nsr_tf.perturb``)
and export accept three kinds of model:

* ``"keras"``: a Keras layer or model, called as ``model(x, training=False)``;
* ``"saved_model"``: an object from ``tf.saved_model.load`` (or
  ``nsr_tf.export.load_attack_ready``) with a ``serve`` endpoint and
  ``variables``, called as ``model.serve(x)``;
* ``"callable"``: any other callable ``x -> logits``.

The public entry points ask :func:`kind` once and dispatch on the answer;
nothing else inspects a model's type. Imports only Keras/TensorFlow.
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

KERAS = "keras"
SAVED_MODEL = "saved_model"
CALLABLE = "callable"

_DESCRIPTIONS = {
    KERAS: "a Keras model",
    SAVED_MODEL: "a loaded SavedModel (with a `serve` endpoint)",
    CALLABLE: "a callable x -> logits",
}


def _kind_or_none(model: Any) -> str | None:
    if isinstance(model, keras.layers.Layer):
        return KERAS
    if hasattr(model, "variables") and callable(getattr(model, "serve", None)):
        return SAVED_MODEL
    if callable(model):
        return CALLABLE
    return None


def is_saved_model(model: Any) -> bool:
    """True for loaded SavedModels (``serve`` + ``variables``, not Keras)."""
    return _kind_or_none(model) == SAVED_MODEL


def kind(
    model: Any,
    allowed: Sequence[str] = (KERAS, SAVED_MODEL, CALLABLE),
    name: str = "model",
) -> str:
    """Which kind of model ``model`` is: ``"keras"``, ``"saved_model"``
    or ``"callable"``.

    Args:
        model: the object to classify.
        allowed: the kinds the caller supports.
        name: the argument's name in error messages.

    Returns:
        The kind.

    Raises:
        ValueError: when ``model`` is none of ``allowed``.
    """
    found = _kind_or_none(model)
    if found not in allowed:
        wanted = " or ".join(_DESCRIPTIONS[k] for k in allowed)
        raise ValueError(
            f"`{name}` must be {wanted}. Received: {name}={model!r}"
        )
    return found


def logits_fn(model: Any, name: str = "model_fn") -> Callable:
    """``x -> logits`` for any kind of model (Keras: ``training=False``)."""
    found = kind(model, name=name)
    if found == KERAS:
        return lambda x: model(x, training=False)
    if found == SAVED_MODEL:
        return model.serve
    return model


def num_classes(model: Any, x: tf.Tensor) -> int | None:
    """The number of logits of ``model``: from a functional Keras model's
    static output shape when it has one, else from one forward pass on
    ``x[:1]`` (``None`` when even that has no static width)."""
    if isinstance(model, keras.layers.Layer):
        try:
            outputs = model.outputs
        except (AttributeError, ValueError):  # not a built functional model
            outputs = None
        if outputs and len(outputs) == 1 and outputs[0].shape[-1]:
            return int(outputs[0].shape[-1])
    width = logits_fn(model)(x[:1]).shape[-1]
    return None if width is None else int(width)


__all__ = [
    "CALLABLE",
    "KERAS",
    "SAVED_MODEL",
    "is_saved_model",
    "kind",
    "logits_fn",
    "num_classes",
]
