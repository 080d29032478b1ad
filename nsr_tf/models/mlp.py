"""The SN paper's 1- and 2-hidden-layer ELU MLPs."""

import keras

from layers import SNDense


def mlp(
    *,
    input_shape,
    beta: float = float("inf"),
    num_classes: int = 10,
    hidden_layers: int = 1,
    units: int = 512,
    activation: str = "elu",
    name: str | None = None,
) -> keras.Model:
    """Builds flatten -> [SN dense ``units`` -> ELU] x n -> SN dense.

    Glorot-uniform kernels, zero biases, every layer (the last included)
    spectrally normalized with ``beta``.

    Args:
        input_shape: shape of one example (flattened first).
        beta: SN cap on each layer's spectral norm.
        num_classes: number of logits.
        hidden_layers: number of hidden layers (1 for ``mlp1``, 2 for
            ``mlp2``).
        units: hidden width.
        activation: hidden activation.
        name: model name (default ``mlp{hidden_layers}``).

    Returns:
        A functional ``keras.Model`` from inputs to logits.

    Raises:
        ValueError: if ``hidden_layers < 0`` or ``units < 1``.

    Reference:
        Farnia et al., ICLR 2019, §5; code ``models/mlp.py: mlp1_elu_sn,
        mlp2_elu_sn``; spec sn_paper.md §2.
    """
    if int(hidden_layers) != hidden_layers or hidden_layers < 0:
        raise ValueError(
            "`hidden_layers` must be an integer >= 0. "
            f"Received: hidden_layers={hidden_layers}"
        )
    if int(units) != units or units < 1:
        raise ValueError(
            f"`units` must be an integer >= 1. Received: units={units}"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    h = keras.layers.Flatten(name="flatten")(inputs)
    for i in range(int(hidden_layers)):
        h = SNDense(
            int(units), beta=beta, activation=activation, name=f"dense{i + 1}"
        )(h)
    logits = SNDense(num_classes, beta=beta, name="logits")(h)
    return keras.Model(inputs, logits, name=name or f"mlp{hidden_layers}")
