"""The SN paper's ResNet-32 (pre-activation, no batch norm, no conv bias)."""

import keras

from layers import SNConv2D
from layers import SNDense

#: Stage widths as the paper's code builds them (cumulative ``*= 2**i``).
SPEC_WIDTHS = (16, 32, 128)
#: Stage widths the code intended (16, 32, 64).
INTENDED_WIDTHS = (16, 32, 64)


def conv_initializer():
    """TF1 ``variance_scaling_initializer()``: 1, fan_in, trunc. normal."""
    return keras.initializers.VarianceScaling(
        scale=1.0, mode="fan_in", distribution="truncated_normal"
    )


def _fixed_conv(x, filters, size, strides, *, beta, method, name):
    """Conv without bias; strided convs pad explicitly and then run VALID.

    Padding is ``(size-1)//2`` before and the rest after, as in the TF
    official ResNet's ``conv2d_fixed_padding``; the SN state ``u`` of such a
    layer therefore lives in the padded input space (spec sn_paper.md §3).
    """
    padding = "same"
    if strides > 1:
        total = size - 1
        begin = total // 2
        if total > 0:
            x = keras.layers.ZeroPadding2D(
                ((begin, total - begin), (begin, total - begin)),
                name=f"{name}_pad",
            )(x)
        padding = "valid"
    return SNConv2D(
        filters,
        size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=conv_initializer(),
        beta=beta,
        method=method,
        name=name,
    )(x)


def _block(x, filters, strides, projection, *, beta, method, name):
    """Pre-activation building block without batch norm."""
    sn = dict(beta=beta, method=method)
    pre = keras.layers.ReLU(name=f"{name}_relu0")(x)
    shortcut = x
    if projection:
        shortcut = _fixed_conv(
            pre, filters, 1, strides, name=f"{name}_proj", **sn
        )
    h = _fixed_conv(pre, filters, 3, strides, name=f"{name}_conv1", **sn)
    h = keras.layers.ReLU(name=f"{name}_relu1")(h)
    h = _fixed_conv(h, filters, 3, 1, name=f"{name}_conv2", **sn)
    return keras.layers.Add(name=f"{name}_add")([h, shortcut])


def resnet(
    *,
    input_shape,
    beta: float = float("inf"),
    method: str = "operator",
    num_classes: int = 10,
    intended_widths: bool = False,
    blocks_per_stage: int = 5,
    name: str = "resnet",
) -> keras.Model:
    """Builds the SN paper's ResNet (TF official CIFAR ResNet-32, no BN).

    Initial conv 3x3 -> 16 (stride 1) -> 3 stages of ``blocks_per_stage``
    pre-activation blocks with strides (1, 2, 2), the first block of every
    stage (stage 1 included) with a 1x1 projection shortcut taken on the
    ReLU'd input -> ReLU -> spatial mean -> dense ``num_classes``. Convs have
    no bias and VarianceScaling(1, fan_in, truncated normal) kernels; the
    dense layer is Glorot-uniform with a zero bias. Spatial sizes at 28x28:
    28 -> 28 -> 14 -> 7.

    Args:
        input_shape: (H, W, C) of one example.
        beta: SN cap on each layer's spectral norm.
        method: conv SN method, ``"operator"`` or ``"kernel"``.
        num_classes: number of logits.
        intended_widths: False (default) gives the checkpoints' stage widths
            16/32/128; True gives the intended 16/32/64.
        blocks_per_stage: blocks per stage (5 for ResNet-32).
        name: model name.

    Returns:
        A functional ``keras.Model`` from images to logits.

    Raises:
        ValueError: if ``blocks_per_stage < 1``.

    Reference:
        Farnia et al., ICLR 2019, §5; code ``models/resnet.py: resnet_sn``;
        spec sn_paper.md §2 and §12.3.
    """
    if int(blocks_per_stage) != blocks_per_stage or blocks_per_stage < 1:
        raise ValueError(
            "`blocks_per_stage` must be an integer >= 1. "
            f"Received: blocks_per_stage={blocks_per_stage}"
        )
    widths = INTENDED_WIDTHS if intended_widths else SPEC_WIDTHS
    sn = dict(beta=beta, method=method)
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    h = _fixed_conv(inputs, 16, 3, 1, name="conv0", **sn)
    for stage, (filters, strides) in enumerate(
        zip(widths, (1, 2, 2), strict=True)
    ):
        for block in range(int(blocks_per_stage)):
            h = _block(
                h,
                filters,
                strides if block == 0 else 1,
                block == 0,
                name=f"stage{stage + 1}_block{block + 1}",
                **sn,
            )
    h = keras.layers.ReLU(name="final_relu")(h)
    h = keras.layers.GlobalAveragePooling2D(name="spatial_mean")(h)
    logits = SNDense(num_classes, beta=beta, name="logits")(h)
    return keras.Model(inputs, logits, name=name)
