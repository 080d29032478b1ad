"""A Keras callback that makes a collapsed training run visible.

A network whose first-layer ReLUs have all died trains on at chance
accuracy with a finite, flat loss; nothing fails. This is what NSR eq. 23
does to the paper's MLP at the printed penalty scale (see
``RobustConfig.penalty_scale`` and ``docs/nsr_training.md``).
"""

import warnings

import keras
import numpy as np


class CollapseWarning(UserWarning):
    """Training has collapsed (dead ReLUs or chance accuracy)."""


def _is_relu(layer):
    if isinstance(layer, keras.layers.ReLU):
        return True
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) == "relu"


def first_relu_layer(model):
    """The first layer of ``model`` whose output is a ReLU (or None)."""
    for layer in model._flatten_layers(include_self=False):
        if _is_relu(layer):
            return layer
    return None


def dead_unit_fraction(model, x, *, layer=None, batch_size=500):
    """Fraction of a ReLU layer's units that are zero on every example.

    A unit (a feature of a dense layer, a channel of a conv layer) is dead
    when its output is <= 0 for every example of ``x`` and, for conv
    layers, every position.

    Args:
        model: a functional Keras model.
        x: a probe batch of inputs.
        layer: the ReLU layer (default: the first one of ``model``).
        batch_size: examples per forward pass.

    Returns:
        The fraction in [0, 1].

    Raises:
        ValueError: ``model`` has no ReLU layer.
    """
    layer = layer or first_relu_layer(model)
    if layer is None:
        raise ValueError(
            "`model` must have a ReLU layer to count dead units. "
            f"Received: model={model.name!r}"
        )
    return _dead_fraction(_probe_model(model, layer), x, batch_size)


def _probe_model(model, layer):
    inputs = model.inputs
    inputs = inputs[0] if len(inputs) == 1 else inputs
    return keras.Model(inputs, layer.output)


def _dead_fraction(probe, x, batch_size=500):
    x = np.asarray(x)
    peak = None
    for start in range(0, len(x), batch_size):
        out = np.asarray(probe(x[start : start + batch_size], training=False))
        out = out.reshape(-1, out.shape[-1]).max(axis=0)
        peak = out if peak is None else np.maximum(peak, out)
    return float(np.mean(peak <= 0))


class CollapseMonitor(keras.callbacks.Callback):
    """Logs collapse signs and warns once when training has collapsed.

    At the end of every epoch it adds to the ``fit`` logs (and so to
    ``History`` and to a ``TensorBoard`` callback listed after it):

    * ``dead_units``: the fraction of first-layer ReLU units that are zero
      on every probe example (when ``probe`` is given);
    * ``penalty_ratio``: ``penalty / ce`` when the logs have both (a
      ``RobustModel`` in an NSR eq. 23 mode reports them).

    It warns once (:class:`CollapseWarning`, naming the cause) when more
    than ``dead_threshold`` of the units are dead, checked every
    ``check_every`` batches and at each epoch end, or when the training
    accuracy after an epoch is within ``chance_margin`` of chance.

    Args:
        probe: inputs the dead units are counted on (e.g. 500 training
            images), or None to skip that count.
        dead_threshold: dead fraction above which training has collapsed.
        chance_margin: an accuracy <= 1/classes + this is at chance.
        check_every: batches between dead-unit checks during an epoch
            (0: only at epoch ends).

    Raises:
        ValueError: bad thresholds.

    Example:
        >>> model.fit(x, y, callbacks=[CollapseMonitor(x[:500])])
    """

    def __init__(
        self,
        probe=None,
        *,
        dead_threshold=0.5,
        chance_margin=0.05,
        check_every=100,
    ):
        super().__init__()
        for name, value in (
            ("dead_threshold", dead_threshold),
            ("chance_margin", chance_margin),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"`{name}` must be in [0, 1]. Received: {name}={value}"
                )
        if int(check_every) != check_every or check_every < 0:
            raise ValueError(
                "`check_every` must be an integer >= 0. "
                f"Received: check_every={check_every}"
            )
        self.probe = None if probe is None else np.asarray(probe)
        self.dead_threshold = float(dead_threshold)
        self.chance_margin = float(chance_margin)
        self.check_every = int(check_every)
        self.collapse_reason = None
        self._steps = 0
        self._probe_model = None

    def on_train_begin(self, logs=None):
        self.collapse_reason = None
        self._steps = 0
        layer = first_relu_layer(self.model)
        self._probe_model = None
        if self.probe is not None and layer is not None:
            self._probe_model = _probe_model(self.model, layer)

    def _dead(self):
        if self._probe_model is None:
            return None
        return _dead_fraction(self._probe_model, self.probe)

    def _warn(self, reason):
        if self.collapse_reason is not None:
            return
        self.collapse_reason = reason
        warnings.warn(
            f"Training has collapsed: {reason}. The network is not learning "
            "(for NSR eq. 23 modes: the penalty outweighs the cross-entropy; "
            "lower RobustConfig.penalty_scale or its tau/zeta weights).",
            CollapseWarning,
            stacklevel=2,
        )

    def _check_dead(self, dead):
        if dead is not None and dead > self.dead_threshold:
            self._warn(
                f"{100 * dead:.0f}% of the first-layer ReLU units are dead "
                f"(never active on the probe batch; threshold "
                f"{100 * self.dead_threshold:.0f}%)"
            )

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.check_every and self._steps % self.check_every == 0:
            self._check_dead(self._dead())

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        dead = self._dead()
        if dead is not None:
            logs["dead_units"] = dead
        if "penalty" in logs and "ce" in logs:
            ce = float(logs["ce"])
            logs["penalty_ratio"] = float(logs["penalty"]) / max(ce, 1e-12)
        self._check_dead(dead)
        key = next(
            (k for k in ("clean_accuracy", "accuracy") if k in logs), None
        )
        classes = self.model.outputs[0].shape[-1]
        if key is not None and classes and classes > 1:
            chance = 1.0 / classes
            if float(logs[key]) <= chance + self.chance_margin:
                self._warn(
                    f"training {key} {float(logs[key]):.3f} after epoch "
                    f"{epoch + 1} is at chance (1/{classes})"
                )
