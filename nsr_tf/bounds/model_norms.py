"""Per-layer norms of a Keras model, the inputs of the capacity norms Phi.

Walks a model's weight layers (Dense, Conv2D and their SN versions, at any
nesting depth) and turns each into per-layer quantities: the operator
spectral norm of its effective kernel and its Frobenius norm (the inputs of
:mod:`nsr_tf.bounds.phi`).

Reference:
    Farnia, Zhang, Tse. Generalizable Adversarial Training via Spectral
    Normalization. ICLR 2019. Theorems 1-4 and App. B.
"""

import keras
import numpy as np

from layers import effective_kernel
from layers import spectral

DEFAULT_ITERATIONS = 200


def weight_layers(model) -> list:
    """The Dense/Conv2D layers of ``model`` (SN ones included), in order.

    This is the one place that walks a model for the capacity norms; the
    per-layer quantities below and the figure helpers read its list.

    Raises:
        ValueError: if ``model`` is not a ``keras.Model`` or has no
            Dense/Conv2D layer.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            "`model` must be a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    found = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))
    ]
    if not found:
        raise ValueError("`model` has no Dense or Conv2D layer.")
    return found


def conv_input_shape(layer) -> tuple:
    """``(H, W, C_in)`` of a built conv layer's input.

    Raises:
        ValueError: if the shape is unknown (no fixed ``keras.Input``).
    """
    shape = getattr(layer, "_input_hwc", None)
    if shape is None:
        try:
            shape = tuple(layer.input.shape[1:])
        except (AttributeError, ValueError):
            shape = None
    if shape is None or any(v is None for v in shape):
        raise ValueError(
            f"The input shape of conv layer {layer.name!r} is unknown; build "
            "the model with a fixed keras.Input shape."
        )
    return tuple(int(v) for v in shape)


def layer_norms(model, *, iterations: int = DEFAULT_ITERATIONS):
    """Operator spectral norms and Frobenius norms of every weight layer.

    Dense layers: exact largest singular value (SVD, float64). Conv layers:
    the spectral norm of the true convolution operator (stride, padding,
    dilation, the layer's input shape) by ``iterations`` steps of power
    iteration (``layers.spectral.conv_operator_norm``). The effective kernel
    is used for SN layers. The Frobenius norm is that of the kernel.

    Args:
        model: a built ``keras.Model`` (Dense/Conv2D/SNDense/SNConv2D layers
            are used, at any nesting depth, in layer order).
        iterations: power-iteration steps for conv layers.

    Returns:
        ``(spectral, frobenius)``: two float64 NumPy arrays, one entry per
        weight layer.

    Raises:
        ValueError: if the model has no weight layer or a conv input shape
            is unknown.

    Reference:
        Farnia et al. 2019, Theorems 1-4 and App. B.
    """
    sig, frob = [], []
    for layer in weight_layers(model):
        kernel = effective_kernel(layer).numpy().astype(np.float64)
        if isinstance(layer, keras.layers.Conv2D):
            sigma = spectral.conv_operator_norm(
                kernel,
                conv_input_shape(layer),
                strides=tuple(layer.strides),
                padding=layer.padding,
                dilation_rate=tuple(layer.dilation_rate),
                iterations=iterations,
            )
        else:
            sigma = float(np.linalg.svd(kernel, compute_uv=False)[0])
        sig.append(sigma)
        frob.append(float(np.sqrt(np.sum(kernel**2))))
    return np.array(sig), np.array(frob)
