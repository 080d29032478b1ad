"""The one mechanism by which weight perturbations reach a forward pass.

A *weight target* is one tensor the forward pass uses:

* for our spectrally-normalized layers (``layers.is_spectral``, i.e.
  ``layers.SNDense``/``layers.SNConv2D``) the target is the **effective**
  kernel ``W / max(1, sigma / beta)`` (``layers.effective_kernel``), and a
  perturbed value reaches the layer through ``layers.override.kernel_override``
  (which also stops the power-iteration update);
* for any other Keras variable (plain ``Dense``/``Conv2D`` kernels, biases)
  the value is substituted with ``keras.StatelessScope``;
* for a SavedModel loaded with ``tf.saved_model.load`` (no Python layers) the
  targets are its ``tf.Variable`` objects, perturbed in place and restored
  exactly in a ``try/finally`` (``perturbed_variables``). For a SavedModel of
  an SN network this perturbs the stored variables (the raw kernels unless the
  export baked the effective kernels in).

Keras models are never mutated: ``perturbed_call`` and ``call_with_weights``
are pure functions of their arguments and can be traced inside a
``tf.function`` (the training team's joint mode does so).
"""

import contextlib
import dataclasses
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from layers import effective_kernel
from layers import is_spectral
from layers.override import kernel_override
from nsr_tf import model_adapter
from nsr_tf.model_adapter import is_saved_model


@dataclasses.dataclass(frozen=True, eq=False)
class WeightTarget:
    """One perturbable weight.

    Attributes:
        variable: the underlying variable (Keras or ``tf.Variable``).
        layer: the SN layer whose *effective* kernel is the target, or None
            when the variable's own value is the target.
    """

    variable: Any
    layer: Any = None

    @property
    def name(self) -> str:
        """A readable name (the variable's path)."""
        return str(getattr(self.variable, "path", None) or self.variable.name)

    @property
    def shape(self) -> tuple:
        return tuple(self.variable.shape)


def _all_layers(model: keras.layers.Layer) -> list:
    return list(model._flatten_layers(include_self=True, recursive=True))


def _var_kind(var: Any) -> str:
    name = str(getattr(var, "name", "")).split(":")[0].split("/")[-1]
    return name


def _default_targets_keras(model, include_bias: bool) -> list[WeightTarget]:
    targets, seen = [], set()
    for layer in _all_layers(model):
        names = ("kernel", "bias") if include_bias else ("kernel",)
        for attr in names:
            var = getattr(layer, attr, None)
            if not isinstance(var, keras.Variable) or id(var) in seen:
                continue
            seen.add(id(var))
            sn = layer if attr == "kernel" and is_spectral(layer) else None
            targets.append(WeightTarget(var, sn))
    return targets


def _sn_owner_map(model) -> dict[int, Any]:
    return {
        id(layer.kernel): layer
        for layer in _all_layers(model)
        if is_spectral(layer) and getattr(layer, "kernel", None) is not None
    }


def weight_targets(
    model: Any,
    *,
    include_bias: bool = False,
    weights: Sequence[Any] | None = None,
) -> list[WeightTarget]:
    """Lists the weights a weight/joint attack perturbs.

    Args:
        model: a Keras model/layer, or a loaded SavedModel.
        include_bias: also perturb biases (default: kernels only, as in the
            NSR paper whose networks have no biases).
        weights: explicit variables to perturb instead of the default set.
            The kernel of an SN layer selects that layer's effective kernel.

    Returns:
        A list of ``WeightTarget`` in model order.

    Raises:
        ValueError: if a variable in ``weights`` does not belong to ``model``
            or nothing is left to perturb.
    """
    kinds = (model_adapter.KERAS, model_adapter.SAVED_MODEL)
    saved = model_adapter.kind(model, kinds) == model_adapter.SAVED_MODEL
    if weights is not None:
        owned = {id(v): v for v in model.variables}
        sn = {} if saved else _sn_owner_map(model)
        targets = []
        for i, var in enumerate(weights):
            if id(var) not in owned:
                name = getattr(var, "path", None) or getattr(var, "name", var)
                raise ValueError(
                    "`weights` must be variables of `model`. Received: "
                    f"weights[{i}]={name}"
                )
            targets.append(WeightTarget(var, sn.get(id(var))))
        return targets
    if saved:
        kinds = ("kernel", "bias") if include_bias else ("kernel",)
        targets = [
            WeightTarget(v)
            for v in model.variables
            if _var_kind(v) in kinds and v.dtype.is_floating
        ]
    else:
        targets = _default_targets_keras(model, include_bias)
    if not targets:
        raise ValueError(
            "`model` has no kernels to perturb; pass `weights=`. Received: "
            f"model={getattr(model, 'name', model)!r}"
        )
    return targets


def base_values(
    targets: Sequence[WeightTarget], *, stop_gradient: bool = True
) -> list[tf.Tensor]:
    """The clean values of the targets (effective kernels for SN layers).

    Reading an SN layer's effective kernel (``layers.effective_kernel``)
    does not update its power-iteration state.

    Args:
        targets: from ``weight_targets``.
        stop_gradient: when True (the default, used by the attacks, whose
            boxes are centred on these values) the results carry no
            gradient to the model's variables; when False they are
            differentiable in them (through ``layers.effective_kernel`` for SN
            layers).

    Returns:
        One tensor per target.
    """
    out = []
    for t in targets:
        if t.layer is not None:
            value = effective_kernel(t.layer)
        elif isinstance(t.variable, keras.Variable):
            value = t.variable.value
        else:
            value = t.variable.read_value()
        value = tf.convert_to_tensor(value)
        out.append(tf.stop_gradient(value) if stop_gradient else value)
    return out


def call_with_weights(
    model: keras.layers.Layer,
    x: Any,
    targets: Sequence[WeightTarget],
    values: Sequence[Any],
    *,
    training: bool = False,
) -> Any:
    """Runs ``model(x)`` with the targets replaced by ``values`` (no mutation).

    Gradients flow to ``values``. Any state update the forward pass makes
    (SN power iteration, BN statistics) is discarded.
    """
    if len(values) != len(targets):
        raise ValueError(
            "`values` must have one entry per target. Received: "
            f"len(values)={len(values)}, len(targets)={len(targets)}"
        )
    sn_map, mapping = {}, []
    for t, v in zip(targets, values, strict=True):
        if t.layer is not None:
            sn_map[t.layer] = v
        else:
            mapping.append((t.variable, v))
    with kernel_override(sn_map), keras.StatelessScope(state_mapping=mapping):
        return model(x, training=training)


def perturbed_call(
    model: keras.layers.Layer,
    x: Any,
    deltas: Sequence[Any],
    *,
    targets: Sequence[WeightTarget] | None = None,
    training: bool = False,
) -> Any:
    """Forward pass with weights ``base + delta``; the model is not mutated.

    Gradients flow both to ``deltas`` and to the model's variables: under a
    ``GradientTape`` the gradient with respect to a targeted variable is
    ``d loss(W + delta) / dW`` (the update of AWP-style training; for SN
    layers through the effective kernel). The attacks themselves never
    differentiate through the clean weights (see ``base_values``).

    Args:
        model: a Keras model.
        x: inputs.
        deltas: one perturbation per target (e.g. from ``joint_pgd``).
        targets: the targets the deltas belong to; default
            ``weight_targets(model)``.
        training: passed to the model call.

    Returns:
        The model output under the perturbed weights.
    """
    if targets is None:
        targets = weight_targets(model)
    values = [
        b + tf.cast(d, b.dtype)
        for b, d in zip(
            base_values(targets, stop_gradient=False), deltas, strict=True
        )
    ]
    return call_with_weights(model, x, targets, values, training=training)


@contextlib.contextmanager
def perturbed_variables(
    targets: Sequence[WeightTarget], deltas: Sequence[Any] | None = None
) -> Iterator[None]:
    """Adds ``deltas`` to the variables in place; restores them exactly.

    The path for SavedModels (whose forward pass reads the variables). The
    original values are copied before and written back in a ``finally``, so
    the variables are bit-for-bit unchanged afterwards even if the block
    raises. Eager mode only. SN targets are rejected (use
    ``perturbed_call``).

    Args:
        targets: plain-variable targets.
        deltas: one perturbation per target, or None to only guarantee the
            restore (the block may assign the variables itself).

    Yields:
        None.
    """
    for t in targets:
        if t.layer is not None:
            raise ValueError(
                "`targets` must be plain variables for in-place perturbation."
                f" Received: an effective-kernel target {t.name}"
            )
    saved = [np.array(t.variable.numpy(), copy=True) for t in targets]
    try:
        if deltas is not None:
            for t, d, s in zip(targets, deltas, saved, strict=True):
                t.variable.assign(s + np.asarray(d, dtype=s.dtype))
        yield
    finally:
        for t, s in zip(targets, saved, strict=True):
            t.variable.assign(s)


__all__ = [
    "WeightTarget",
    "base_values",
    "call_with_weights",
    "is_saved_model",
    "perturbed_call",
    "perturbed_variables",
    "weight_targets",
]
