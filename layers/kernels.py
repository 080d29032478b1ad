"""The effective kernel of a layer, and whether it is spectrally normalized.

The one definition every part of the library uses (weight perturbations,
margin bounds, capacity norms, export, robust training): no other module
re-derives ``W / max(1, sigma_hat / beta)`` or decides "is SN" by itself.
"""

from typing import Any

import keras

from layers import _sn_common


def is_spectral(layer: Any) -> bool:
    """Whether ``layer`` is one of our spectrally-normalized layers.

    Args:
        layer: any object (a Keras layer or not).

    Returns:
        True for ``SNDense`` and ``SNConv2D`` (and subclasses), False for
        everything else, including their plain Keras parents.
    """
    return isinstance(layer, _sn_common.SpectralNormMixin)


def effective_kernel(layer: Any) -> Any:
    """The kernel that ``layer(x, training=False)`` applies to its input.

    For a spectrally-normalized layer this is the kernel substituted by an
    active ``layers.kernel_override`` if there is one, else
    ``W / max(1, sigma_hat / beta)`` with ``sigma_hat`` from
    ``power_iterations`` steps started at the stored ``u`` (the same value
    as ``layer.normalized_kernel()``). ``u`` is never updated, and gradients
    flow to ``W`` through ``sigma_hat``. For any other layer with a kernel
    (``Dense``, ``Conv2D``, ...) it is the layer's ``kernel`` variable itself,
    so that reading it later (under a tape or a ``keras.StatelessScope``)
    sees its current value; plain layers ignore ``kernel_override``.

    Args:
        layer: a built Keras layer with a kernel.

    Returns:
        A float32 tensor shaped like the kernel for SN layers (or the
        override as given, converted to a tensor); the kernel variable for
        other layers.

    Raises:
        ValueError: if ``layer`` is not a built Keras layer with a kernel.

    Example:

    >>> layer = layers.SNDense(2, beta=1.0)
    >>> _ = layer(np.ones((1, 3), "float32"))
    >>> layers.effective_kernel(layer).shape
    TensorShape([3, 2])

    Reference:
        Farnia, Zhang and Tse, ICLR 2019, eq. 9.
    """
    if not isinstance(layer, keras.layers.Layer) or not layer.built:
        raise ValueError(
            "`layer` must be a built Keras layer. "
            f"Received: layer={getattr(layer, 'name', layer)!r}"
        )
    if is_spectral(layer):
        return layer._effective_kernel(training=False)
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        raise ValueError(
            "`layer` must have a kernel. "
            f"Received: layer={layer.name!r} ({type(layer).__name__})"
        )
    return kernel
