"""Export of a model as an attack-ready SavedModel, and loading it back.

The exported SavedModel

* has a serving endpoint and signature ``serve`` from images (``float32``
  NHWC, input name ``images``) to logits (``loaded.serve(images)``; in the
  signature map the output is named ``output_0``);
* holds the spectral normalization *frozen*: every SN layer is replaced by
  its plain Keras parent whose kernel is the layer's effective kernel
  ``W / max(1, sigma/beta)`` (computed from the stored ``u`` without
  updating it), so the power iteration is not part of the graph;
* keeps the weights as variables (``obj.variables``), so that a weight
  attack can perturb exactly the weights used in the forward pass;
* loads with ``tf.saved_model.load`` alone: no nsr_tf class is needed, and
  third-party tools (e.g. ART's ``TensorFlowV2Classifier``) can attack it.
"""

from __future__ import annotations

import contextlib
import logging

import keras
import numpy as np
import tensorflow as tf
from absl import logging as absl_logging

from layers import effective_kernel
from layers import is_spectral
from nsr_tf import model_adapter

_SN_ONLY_KEYS = ("beta", "power_iterations", "method")


def _plain_layer(layer):
    """The plain Keras parent of an SN layer, with the same configuration."""
    if not is_spectral(layer):
        return layer.__class__.from_config(layer.get_config())
    config = {
        k: v for k, v in layer.get_config().items() if k not in _SN_ONLY_KEYS
    }
    for parent in (keras.layers.Dense, keras.layers.Conv2D):
        if isinstance(layer, parent):
            return parent.from_config(config)
    raise ValueError(
        "Cannot freeze an SN layer that is neither Dense nor Conv2D. "
        f"Received: layer={layer.name} ({type(layer).__name__})"
    )


def _frozen_weights(layer) -> list[np.ndarray]:
    if not is_spectral(layer):
        return layer.get_weights()
    weights = [keras.ops.convert_to_numpy(effective_kernel(layer))]
    if getattr(layer, "use_bias", False):
        weights.append(keras.ops.convert_to_numpy(layer.bias))
    return weights


def plain_twin(model: keras.Model) -> keras.Model:
    """A functional copy of ``model`` with every SN layer frozen.

    SN layers become plain ``Dense`` / ``Conv2D`` layers holding the
    effective kernel; other layers are cloned with their weights. The twin
    computes the same function as ``model(x, training=False)``.

    Args:
        model: a functional Keras model (also a ``RobustModel``).

    Returns:
        A plain ``keras.Model``.
    """
    if not getattr(model, "_is_graph_network", False) and not hasattr(
        model, "inputs"
    ):
        raise ValueError(
            "`model` must be a functional Keras model. "
            f"Received: model={type(model).__name__}"
        )
    twin = keras.models.clone_model(
        model,
        clone_function=_plain_layer,
        input_tensors=None,
    )
    twin = keras.Model(twin.inputs, twin.outputs, name=f"{model.name}_frozen")
    source = {layer.name: layer for layer in model.layers}
    for layer in twin.layers:
        original = source.get(layer.name)
        if original is not None and original.weights:
            layer.set_weights(_frozen_weights(original))
    return twin


def export_attack_ready(model: keras.Model, directory: str) -> keras.Model:
    """Writes ``model`` as an attack-ready SavedModel to ``directory``.

    Args:
        model: a functional Keras model, possibly with SN layers.
        directory: output directory (created; overwritten if present).

    Returns:
        The plain frozen twin that was exported.
    """
    twin = plain_twin(model)
    shape = tuple(model.inputs[0].shape)
    archive = keras.export.ExportArchive()
    archive.track(twin)

    def serve(images):
        return twin(images, training=False)

    archive.add_endpoint(
        name="serve",
        fn=serve,
        input_signature=[tf.TensorSpec(shape, tf.float32, name="images")],
    )
    with quiet_tf_logs():
        archive.write_out(directory, verbose=False)
    return twin


@contextlib.contextmanager
def quiet_tf_logs():
    """Lowers TensorFlow's and absl's log verbosity to WARNING meanwhile.

    Saving a SavedModel logs INFO lines ("Writing fingerprint to ...",
    renamed inputs, sharding durations) that would flood a sweep's log.
    """
    tf_logger = tf.get_logger()
    tf_level, absl_level = tf_logger.level, absl_logging.get_verbosity()
    tf_logger.setLevel(logging.WARNING)
    absl_logging.set_verbosity(absl_logging.WARNING)
    try:
        yield
    finally:
        tf_logger.setLevel(tf_level)
        absl_logging.set_verbosity(absl_level)


class SavedModelClassifier:
    """A loaded attack-ready SavedModel as a logits callable with weights.

    Calling it (or its ``serve``) maps images to logits; ``variables`` are
    the restored ``tf.Variable`` objects, ``kernels`` those of rank >= 2 (the
    weight matrices and conv kernels), which is what a weight attack
    perturbs. ``nsr_tf.attacks.joint_pgd`` accepts it like the raw loaded
    object.
    """

    def __init__(self, loaded):
        self.loaded = loaded
        self.variables = list(loaded.variables)
        self.kernels = [v for v in self.variables if len(v.shape) >= 2]
        signature = loaded.signatures["serve"].structured_input_signature
        self.input_shape = tuple(signature[1]["images"].shape)

    def serve(self, images):
        """Images -> logits through the exported graph."""
        return self.loaded.serve(tf.convert_to_tensor(images, tf.float32))

    def __call__(self, images, training=False):
        del training  # the frozen graph has no training behaviour
        return self.serve(images)


def load_attack_ready(directory: str) -> SavedModelClassifier:
    """Loads an exported SavedModel with ``tf.saved_model.load`` only."""
    return SavedModelClassifier(tf.saved_model.load(directory))


def as_callable(loaded) -> SavedModelClassifier:
    """A loaded SavedModel as ``model(images, training=False) -> logits``.

    ``tf.saved_model.load`` returns an object with a ``serve`` endpoint but
    no ``__call__``; third-party tools such as ART's
    ``TensorFlowV2Classifier`` call ``model(x, training=...)``. This wraps
    it (``load_attack_ready`` already returns the wrapped form, which is
    returned unchanged).

    Args:
        loaded: the result of ``tf.saved_model.load`` on a SavedModel with a
            ``serve`` signature (from ``export_attack_ready`` or
            ``keras.Model.export``), or a ``SavedModelClassifier``.

    Returns:
        A ``SavedModelClassifier``.

    Raises:
        ValueError: when ``loaded`` is not a loaded SavedModel.
    """
    if isinstance(loaded, SavedModelClassifier):
        return loaded
    model_adapter.kind(loaded, (model_adapter.SAVED_MODEL,), name="loaded")
    return SavedModelClassifier(loaded)
