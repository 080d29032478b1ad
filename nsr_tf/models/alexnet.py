"""The mini-AlexNet of the SN paper (ReLU and ELU versions)."""

import keras

from layers import SNConv2D
from layers import SNDense
from nsr_tf.models._lrn import LocalResponseNormalization


def alexnet(
    *,
    input_shape,
    beta: float = float("inf"),
    method: str = "operator",
    num_classes: int = 10,
    activation: str = "relu",
    name: str = "alexnet",
) -> keras.Model:
    """Builds the spectrally-normalized mini-AlexNet.

    conv 5x5/96 SAME -> act -> maxpool 3x3/2 VALID -> LRN -> conv 5x5/256
    SAME -> act -> maxpool 3x3/2 VALID -> LRN -> flatten -> dense 384 -> act
    -> dense 192 -> act -> dense ``num_classes``. Every conv and dense layer
    (the last included) is spectrally normalized with the same ``beta``;
    kernels are Glorot-uniform and biases zero. At 28x28 the flatten has
    6*6*256 = 9216 features.

    Args:
        input_shape: (H, W, C) of one example, e.g. (28, 28, 3).
        beta: SN cap on each layer's spectral norm (``inf``: no cap).
        method: conv SN method, ``"operator"`` or ``"kernel"``.
        num_classes: number of logits.
        activation: ``"relu"`` (AlexNet) or ``"elu"`` (ELU-AlexNet).
        name: model name.

    Returns:
        A functional ``keras.Model`` from images to logits.

    Reference:
        Farnia et al., ICLR 2019, §5; code ``models/alexnet.py:
        alexnet_sn`` / ``alexnet_elu_sn``; spec sn_paper.md §2.
    """
    conv = dict(beta=beta, method=method, padding="same", activation=activation)
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    h = SNConv2D(96, 5, name="conv1", **conv)(inputs)
    h = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="pool1")(
        h
    )
    h = LocalResponseNormalization(name="lrn1")(h)
    h = SNConv2D(256, 5, name="conv2", **conv)(h)
    h = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="pool2")(
        h
    )
    h = LocalResponseNormalization(name="lrn2")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = SNDense(384, beta=beta, activation=activation, name="dense1")(h)
    h = SNDense(192, beta=beta, activation=activation, name="dense2")(h)
    logits = SNDense(num_classes, beta=beta, name="logits")(h)
    return keras.Model(inputs, logits, name=name)


def elu_alexnet(**kwargs) -> keras.Model:
    """ELU-AlexNet: :func:`alexnet` with ELU in place of every ReLU."""
    kwargs.setdefault("name", "elu_alexnet")
    return alexnet(activation="elu", **kwargs)
