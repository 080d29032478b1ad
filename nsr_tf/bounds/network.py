"""The network and radii of a margin-bound call, checked and normalized.

Turns the user's kernels (and biases) into a chain of
:class:`~nsr_tf.bounds.affine.AffineLayer` of one floating dtype, and the
radii ``eps_x``, ``eps_w`` and ``eps_b`` into checked per-layer values. No
bound is computed here.
"""

import numbers
from typing import Sequence

import tensorflow as tf

from nsr_tf import checks
from nsr_tf.bounds import affine as aff


def eps_list(eps, n, name) -> list:
    """One epsilon per layer; numbers are checked to be finite and >= 0.

    Args:
        eps: a number or scalar tensor (the same for every layer), or one
            value per layer.
        n: the number of layers.
        name: the argument's name, for the error message.

    Returns:
        A list of ``n`` radii: Python floats, or the tensors given.

    Raises:
        ValueError: for a negative or non-finite number or a wrong length.
    """
    if isinstance(eps, (tf.Tensor, tf.Variable)) and eps.shape.rank == 0:
        return [eps] * n
    if isinstance(eps, numbers.Real):
        values = [eps] * n
    else:
        try:
            values = list(eps)
        except TypeError:
            raise ValueError(
                f"`{name}` must be a number or one number per layer. "
                f"Received: {name}={eps!r}"
            ) from None
        if len(values) != n:
            raise ValueError(
                f"`{name}` must hold one value per layer ({n}). "
                f"Received: {name}={eps!r}"
            )
    return [checks.check_nonnegative(name, v) for v in values]


def check_eps_x(eps_x):
    """The input radius: a finite number >= 0 (as a float) or a tensor."""
    return checks.check_nonnegative("eps_x", eps_x)


def _dtype_of(kernel):
    dtype = getattr(kernel, "dtype", None)
    dtype = tf.as_dtype(dtype) if dtype is not None else tf.float32
    return dtype if dtype.is_floating else tf.float32


def as_layers(kernels, biases=None) -> list:
    """Normalizes kernels (and biases) to a list of :class:`AffineLayer`.

    Args:
        kernels: sequence whose items are Keras-layout dense kernels
            ``(in, out)`` (tensors, variables or arrays) or
            :class:`~nsr_tf.bounds.affine.AffineLayer` objects (for
            convolutions, see :func:`~nsr_tf.bounds.conv.conv_layer`).
        biases: None, or one bias (or None) per item of ``kernels``.

    Returns:
        List of ``AffineLayer`` with tensor kernels of one floating dtype.

    Raises:
        ValueError: for fewer than 2 layers, a non-dense last layer, a rank-4
            raw kernel, or kernels whose shapes do not chain.
    """
    if isinstance(kernels, (tf.Tensor, tf.Variable)) or not isinstance(
        kernels, Sequence
    ):
        raise ValueError(
            "`kernels` must be a list of layer kernels. "
            f"Received: kernels of type {type(kernels).__name__}"
        )
    if len(kernels) < 2:
        raise ValueError(
            "`kernels` must hold at least 2 layers (Theorem 2 needs L >= 2). "
            f"Received: {len(kernels)} layer(s)"
        )
    if biases is not None and len(biases) != len(kernels):
        raise ValueError(
            "`biases` must hold one entry (or None) per kernel. "
            f"Received: {len(biases)} biases for {len(kernels)} kernels"
        )
    first = kernels[0]
    dtype = _dtype_of(
        first.kernel if isinstance(first, aff.AffineLayer) else first
    )
    layers = []
    for i, k in enumerate(kernels):
        bias = None if biases is None else biases[i]
        if isinstance(k, aff.AffineLayer):
            layer = k
            if bias is not None:
                layer = aff.AffineLayer(
                    layer.kind,
                    layer.kernel,
                    bias,
                    layer.strides,
                    layer.padding,
                    layer.dilation_rate,
                )
        else:
            if len(k.shape) != 2:
                raise ValueError(
                    "Raw kernels must be rank-2 dense kernels (in, out); wrap "
                    "convolution kernels with `conv_layer`. "
                    f"Received: kernels[{i}].shape={tuple(k.shape)}"
                )
            layer = aff.dense_layer(k, bias)
        kernel = tf.cast(tf.convert_to_tensor(layer.kernel), dtype)
        b = layer.bias
        if b is not None:
            b = tf.cast(tf.convert_to_tensor(b), dtype)
            aff._check_bias(b, kernel.shape[-1])
        layers.append(
            aff.AffineLayer(
                layer.kind,
                kernel,
                b,
                layer.strides,
                layer.padding,
                layer.dilation_rate,
            )
        )
    _check_chain(layers)
    return layers


def _check_chain(layers):
    if layers[-1].kind != "dense":
        raise ValueError(
            "The last layer must be dense (the logits). "
            f"Received: a {layers[-1].kind} last layer"
        )
    for i in range(len(layers) - 1):
        a, b = layers[i], layers[i + 1]
        out = int(a.kernel.shape[-1])
        if b.kind == "conv":
            if a.kind == "dense":
                raise ValueError(
                    f"A conv layer cannot follow a dense layer (layer {i + 1})."
                )
            ok = int(b.kernel.shape[2]) == out
        elif a.kind == "dense":
            ok = int(b.kernel.shape[0]) == out
        else:
            # conv -> dense: the flattened size is checked when applied.
            ok = int(b.kernel.shape[0]) % out == 0
        if not ok:
            raise ValueError(
                f"Kernel shapes do not chain: layer {i} has {out} outputs but "
                f"layer {i + 1} has kernel.shape={tuple(b.kernel.shape)}"
            )
