"""Affine layers (dense or 2-D convolution, optional bias) seen by the bounds.

The margin bounds of :mod:`nsr_tf.bounds.margin` only need a handful of
operations per layer: apply the linear map with a given kernel, its induced
infinity norm (max absolute row sum of the explicit matrix), its fan-in (the
largest number of inputs one output sees), and the l1 norm of a non-negative
input over each output's receptive field. This module provides them for dense
and convolutional layers so that the bound code is written once.

A dense layer flattens a rank > 2 input first (as a Keras ``Flatten`` would);
Flatten is a reshape, so every l1 and infinity norm is unchanged by it.
"""

import dataclasses
from typing import Any
from typing import Optional

import tensorflow as tf

_PADDINGS = ("same", "valid")


@dataclasses.dataclass(frozen=True)
class AffineLayer:
    """One affine layer ``z = A(h) + b`` of a ReLU network.

    Build it with :func:`dense_layer` or :func:`conv_layer`.

    Attributes:
        kind: ``"dense"`` or ``"conv"``.
        kernel: Keras-layout kernel: ``(in, out)`` for dense layers,
            ``(kh, kw, cin, cout)`` for convolutions.
        bias: ``(out,)`` bias or None.
        strides: ``(sh, sw)`` (convolutions only).
        padding: ``"same"`` or ``"valid"`` (convolutions only).
        dilation_rate: ``(dh, dw)`` (convolutions only).
    """

    kind: str
    kernel: Any
    bias: Optional[Any] = None
    strides: tuple = (1, 1)
    padding: str = "valid"
    dilation_rate: tuple = (1, 1)


def _pair(value, name):
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or any(
        not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in value
    ):
        raise ValueError(
            f"`{name}` must be an int >= 1 or a pair of them. "
            f"Received: {name}={value}"
        )
    return value


def dense_layer(kernel, bias=None) -> AffineLayer:
    """A dense layer ``z = h K + b`` with a Keras-layout ``(in, out)`` kernel.

    Args:
        kernel: rank-2 tensor or array of shape ``(in, out)``.
        bias: optional ``(out,)`` bias.

    Returns:
        An :class:`AffineLayer`.

    Raises:
        ValueError: if the kernel is not rank 2 or the bias does not match.
    """
    shape = tuple(kernel.shape)
    if len(shape) != 2:
        raise ValueError(
            f"A dense `kernel` must have rank 2 (in, out). "
            f"Received: kernel.shape={shape}"
        )
    _check_bias(bias, shape[-1])
    return AffineLayer("dense", kernel, bias)


def conv_layer(
    kernel, bias=None, *, strides=1, padding="same", dilation_rate=1
) -> AffineLayer:
    """A 2-D convolution (channels last) with a ``(kh, kw, cin, cout)`` kernel.

    Args:
        kernel: rank-4 tensor or array.
        bias: optional ``(cout,)`` bias.
        strides: int or pair.
        padding: ``"same"`` or ``"valid"`` (zero padding, as in Keras).
        dilation_rate: int or pair.

    Returns:
        An :class:`AffineLayer`.

    Raises:
        ValueError: for a kernel that is not rank 4, a bad bias, stride,
            padding or dilation.
    """
    shape = tuple(kernel.shape)
    if len(shape) != 4:
        raise ValueError(
            f"A conv `kernel` must have rank 4 (kh, kw, cin, cout). "
            f"Received: kernel.shape={shape}"
        )
    _check_bias(bias, shape[-1])
    strides = _pair(strides, "strides")
    dilation_rate = _pair(dilation_rate, "dilation_rate")
    if str(padding).lower() not in _PADDINGS:
        raise ValueError(
            f"`padding` must be 'same' or 'valid'. Received: padding={padding}"
        )
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ValueError(
            "`strides` > 1 and `dilation_rate` > 1 cannot be combined. "
            f"Received: strides={strides}, dilation_rate={dilation_rate}"
        )
    return AffineLayer(
        "conv", kernel, bias, strides, str(padding).lower(), dilation_rate
    )


def _check_bias(bias, units):
    if bias is None:
        return
    shape = tuple(bias.shape)
    if shape != (units,):
        raise ValueError(
            f"`bias` must have shape ({units},) to match the kernel. "
            f"Received: bias.shape={shape}"
        )


def flatten(h: tf.Tensor) -> tf.Tensor:
    """Row-major flatten of all but the batch axis (as Keras ``Flatten``)."""
    if h.shape.rank == 2:
        return h
    return tf.reshape(h, [tf.shape(h)[0], -1])


def linear(layer: AffineLayer, h: tf.Tensor, kernel=None) -> tf.Tensor:
    """Applies the layer's linear map (no bias), optionally with ``kernel``."""
    kernel = layer.kernel if kernel is None else kernel
    if layer.kind == "dense":
        h = flatten(h)
        if h.shape[-1] is not None and h.shape[-1] != kernel.shape[0]:
            raise ValueError(
                f"The layer input has {h.shape[-1]} features but the dense "
                f"kernel expects {kernel.shape[0]}: the layers do not chain. "
                f"Received: kernel.shape={tuple(kernel.shape)}"
            )
        return tf.matmul(h, kernel)
    if h.shape.rank != 4 or h.shape[-1] != kernel.shape[2]:
        raise ValueError(
            f"A conv layer needs a (batch, height, width, {kernel.shape[2]}) "
            f"input: the layers do not chain. Received: input shape "
            f"{tuple(h.shape)}, kernel.shape={tuple(kernel.shape)}"
        )
    return tf.nn.conv2d(
        h,
        kernel,
        strides=(1, *layer.strides, 1),
        padding=layer.padding.upper(),
        dilations=(1, *layer.dilation_rate, 1),
    )


def affine(layer: AffineLayer, h: tf.Tensor) -> tf.Tensor:
    """Applies ``A(h) + b``."""
    z = linear(layer, h)
    if layer.bias is not None:
        z = z + layer.bias
    return z


def inf_norm(layer: AffineLayer, kernel=None) -> tf.Tensor:
    """Induced infinity norm bound ``N = max_out sum_in |W|`` of the layer.

    For a convolution every output sees at most the whole kernel of its
    channel (fewer taps at zero-padded borders), so ``max_cout sum |K|`` is
    the exact norm whenever one output sees the full kernel and an upper
    bound otherwise.
    """
    kernel = layer.kernel if kernel is None else kernel
    if layer.kind == "dense":
        return _dense_inf_norm(tf.convert_to_tensor(kernel))
    return tf.reduce_max(tf.reduce_sum(tf.abs(kernel), axis=[0, 1, 2]))


@tf.custom_gradient
def _dense_inf_norm(kernel):
    """``max_j sum_i |K[i, j]|`` with a one-column subgradient.

    The gradient is ``sign(K[:, j*])`` in the maximizing column ``j*`` and 0
    elsewhere, written straight into a zero tensor: autodiff would build it
    from three kernel-sized passes (the outer product of the reduction, the
    sign, their product), which dominate a small network's training step
    with the eq. 23 penalty. Ties go to the first maximizing column (a valid
    subgradient; autodiff splits it among them).
    """
    sums = tf.reduce_sum(tf.abs(kernel), axis=0)
    column = tf.argmax(sums, output_type=tf.int32)
    norm = tf.gather(sums, column)

    def grad(upstream):
        rows = tf.shape(kernel)[0]
        index = tf.stack([tf.range(rows), tf.fill([rows], column)], axis=1)
        values = tf.sign(tf.gather(kernel, column, axis=1)) * upstream
        return tf.scatter_nd(index, values, tf.shape(kernel))

    return norm, grad


def fan_in(layer: AffineLayer) -> int:
    """Largest number of inputs of one output: ``in`` or ``kh*kw*cin``."""
    shape = layer.kernel.shape
    if layer.kind == "dense":
        return int(shape[0])
    return int(shape[0]) * int(shape[1]) * int(shape[2])


def patch_l1(layer: AffineLayer, v: tf.Tensor) -> tf.Tensor:
    """l1 norm of a non-negative input over each output's receptive field.

    Args:
        layer: the layer whose receptive fields are used.
        v: non-negative layer input (pass ``abs(x)`` for a signed input).

    Returns:
        Dense: ``(B, 1)`` holding ``||v||_1``. Conv: ``(B, H', W', 1)``
        holding, for each output position, the sum of ``v`` over the taps
        that feed it. Both broadcast against the layer's output.
    """
    if layer.kind == "dense":
        return tf.reduce_sum(flatten(v), axis=1, keepdims=True)
    kh, kw = int(layer.kernel.shape[0]), int(layer.kernel.shape[1])
    summed = tf.reduce_sum(v, axis=-1, keepdims=True)
    ones = tf.ones((kh, kw, 1, 1), dtype=v.dtype)
    return tf.nn.conv2d(
        summed,
        ones,
        strides=(1, *layer.strides, 1),
        padding=layer.padding.upper(),
        dilations=(1, *layer.dilation_rate, 1),
    )


def row_sum(t: tf.Tensor) -> tf.Tensor:
    """Sum over all but the batch axis: ``(B, ...) -> (B,)``."""
    return tf.reduce_sum(flatten(t), axis=1)


def batch_max(t: tf.Tensor) -> tf.Tensor:
    """Max over all but the batch axis: ``(B, ...) -> (B,)``."""
    return tf.reduce_max(flatten(t), axis=1)


def batch_l1(t: tf.Tensor) -> tf.Tensor:
    """l1 norm over all but the batch axis: ``(B, ...) -> (B,)``."""
    return tf.reduce_sum(tf.abs(flatten(t)), axis=1)
