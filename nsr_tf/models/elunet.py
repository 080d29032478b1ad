"""ELU-Net for MNIST (Sinha et al.'s network, as the SN paper uses it)."""

import keras

from layers import SNConv2D
from layers import SNDense


def elunet(
    *,
    input_shape,
    beta: float = float("inf"),
    method: str = "operator",
    num_classes: int = 10,
    name: str = "elunet",
) -> keras.Model:
    """Builds the spectrally-normalized ELU-Net.

    conv 8x8/64 stride 2 SAME (28 -> 14) -> ELU -> conv 6x6/128 stride 2
    VALID (14 -> 5) -> ELU -> conv 5x5/128 VALID (5 -> 1) -> ELU -> flatten
    (128) -> dense ``num_classes``. All layers have a (zero-initialized) bias
    and Glorot-uniform kernels.

    Args:
        input_shape: (H, W, C) of one example, e.g. (28, 28, 1).
        beta: SN cap on each layer's spectral norm.
        method: conv SN method, ``"operator"`` or ``"kernel"``.
        num_classes: number of logits.
        name: model name.

    Returns:
        A functional ``keras.Model`` from images to logits.

    Reference:
        Farnia et al., ICLR 2019, §5; code ``models/elunet.py: elunet_sn``;
        Sinha, Namkoong and Duchi, ICLR 2018; spec sn_paper.md §2.
    """
    sn = dict(beta=beta, method=method, activation="elu")
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    h = SNConv2D(64, 8, strides=2, padding="same", name="conv1", **sn)(inputs)
    h = SNConv2D(128, 6, strides=2, padding="valid", name="conv2", **sn)(h)
    h = SNConv2D(128, 5, strides=1, padding="valid", name="conv3", **sn)(h)
    h = keras.layers.Flatten(name="flatten")(h)
    logits = SNDense(num_classes, beta=beta, name="logits")(h)
    return keras.Model(inputs, logits, name=name)
