"""The small Inception network of the SN paper (no batch norm)."""

import keras

from layers import SNConv2D
from layers import SNDense


def _conv(x, filters, size, *, strides=1, beta, method, name):
    return SNConv2D(
        filters,
        size,
        strides=strides,
        padding="same",
        activation="relu",
        beta=beta,
        method=method,
        name=name,
    )(x)


def _incept(x, a, b, *, beta, method, name):
    """concat[ReLU(conv1x1 -> a), ReLU(conv3x3 -> b)], stride 1, SAME."""
    left = _conv(x, a, 1, beta=beta, method=method, name=f"{name}_1x1")
    right = _conv(x, b, 3, beta=beta, method=method, name=f"{name}_3x3")
    return keras.layers.Concatenate(name=f"{name}_concat")([left, right])


def _downsample(x, c, *, beta, method, name):
    """concat[ReLU(conv3x3/2 SAME -> c), maxpool 3x3/2 SAME]."""
    left = _conv(
        x, c, 3, strides=2, beta=beta, method=method, name=f"{name}_conv"
    )
    right = keras.layers.MaxPooling2D(
        3, strides=2, padding="same", name=f"{name}_pool"
    )(x)
    return keras.layers.Concatenate(name=f"{name}_concat")([left, right])


def inception(
    *,
    input_shape,
    beta: float = float("inf"),
    method: str = "operator",
    num_classes: int = 10,
    name: str = "inception",
) -> keras.Model:
    """Builds the spectrally-normalized small Inception network.

    conv3x3/96 -> incept(32,32) -> incept(32,48) -> downsample(80) ->
    incept(112,48) -> incept(96,64) -> incept(80,80) -> incept(48,96) ->
    downsample(96) -> incept(176,160) -> incept(176,160) -> avg-pool 7x7
    stride 1 SAME (not global) -> flatten (7*7*336 = 16464 at 28x28) ->
    dense ``num_classes``. Glorot-uniform kernels, zero biases, every layer
    spectrally normalized with ``beta``.

    Args:
        input_shape: (H, W, C) of one example.
        beta: SN cap on each layer's spectral norm.
        method: conv SN method, ``"operator"`` or ``"kernel"``.
        num_classes: number of logits.
        name: model name.

    Returns:
        A functional ``keras.Model`` from images to logits.

    Reference:
        Farnia et al., ICLR 2019, §5; code ``models/inception.py:
        inception_sn`` (bn=False); spec sn_paper.md §2.
    """
    sn = dict(beta=beta, method=method)
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    h = _conv(inputs, 96, 3, name="conv1", **sn)
    h = _incept(h, 32, 32, name="incept1", **sn)
    h = _incept(h, 32, 48, name="incept2", **sn)
    h = _downsample(h, 80, name="down1", **sn)
    h = _incept(h, 112, 48, name="incept3", **sn)
    h = _incept(h, 96, 64, name="incept4", **sn)
    h = _incept(h, 80, 80, name="incept5", **sn)
    h = _incept(h, 48, 96, name="incept6", **sn)
    h = _downsample(h, 96, name="down2", **sn)
    h = _incept(h, 176, 160, name="incept7", **sn)
    h = _incept(h, 176, 160, name="incept8", **sn)
    h = keras.layers.AveragePooling2D(
        7, strides=1, padding="same", name="avgpool"
    )(h)
    h = keras.layers.Flatten(name="flatten")(h)
    logits = SNDense(num_classes, beta=beta, name="logits")(h)
    return keras.Model(inputs, logits, name=name)
