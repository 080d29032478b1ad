"""The NSR paper's bias-free 784-128-64-32-10 ReLU MLP."""

import keras

from layers import SNDense

#: Hidden widths of the NSR paper's network.
HIDDEN_UNITS = (128, 64, 32)


def nsr_mlp(
    *,
    input_shape,
    beta: float = float("inf"),
    num_classes: int = 10,
    hidden_units=HIDDEN_UNITS,
    name: str = "nsr_mlp",
) -> keras.Model:
    """Builds flatten -> 128 -> ReLU -> 64 -> ReLU -> 32 -> ReLU -> 10.

    Every layer is an ``SNDense(use_bias=False)``; with the default
    ``beta=inf`` the effective kernels equal the raw ones, so the network is
    exactly the paper's f_W(x) = W^4 rho(W^3 rho(W^2 rho(W^1 x))) and the
    margin bounds of ``nsr_tf.bounds`` apply to it. Kernels are
    Glorot-uniform.

    Args:
        input_shape: shape of one example (flattened first), e.g. (28, 28, 1).
        beta: SN cap on each layer's spectral norm.
        num_classes: number of logits.
        hidden_units: hidden widths.
        name: model name.

    Returns:
        A functional ``keras.Model`` from inputs to logits.

    Raises:
        ValueError: if a hidden width is < 1.

    Reference:
        Tsai, Hsu, Yu and Chen, ICASSP 2021, §3.1 and §4.1; spec
        nsr_paper.md §2.1.
    """
    units = tuple(hidden_units)
    for u in units:
        if int(u) != u or u < 1:
            raise ValueError(
                "`hidden_units` must be integers >= 1. "
                f"Received: hidden_units={hidden_units}"
            )
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    h = keras.layers.Flatten(name="flatten")(inputs)
    for i, u in enumerate(units):
        h = SNDense(
            int(u),
            use_bias=False,
            activation="relu",
            beta=beta,
            name=f"dense{i + 1}",
        )(h)
    logits = SNDense(num_classes, use_bias=False, beta=beta, name="logits")(h)
    return keras.Model(inputs, logits, name=name)
