"""Reading the affine layers of a Keras ReLU network for the margin bounds.

Supported models are chains (Sequential, or functional without branches) of
``Dense``/``SNDense`` and ``Conv2D``/``SNConv2D`` (channels last, groups 1)
layers, each followed by a ReLU (the layer's own ``activation="relu"`` or a
plain ``ReLU``/``Activation("relu")`` layer) except the last, which must be a
linear ``Dense`` giving the logits. ``Flatten``, ``InputLayer`` and
``Dropout`` (the identity at inference) may appear anywhere. Everything else
(pooling, normalization, other activations, softmax outputs, residual
branches) is outside Theorem 2 and raises a ``ValueError``.

Spectrally-normalized layers contribute their *effective* kernel (the one
their forward pass applies, ``layers.effective_kernel``): a kernel
substituted through ``layers.kernel_override`` if one is active, else
``normalized_kernel()``.
"""

import keras

from layers import effective_kernel
from nsr_tf.bounds import affine as aff
from nsr_tf.bounds import margin

_IDENTITY = (
    keras.layers.InputLayer,
    keras.layers.Flatten,
    keras.layers.Dropout,
)


def _activation_name(fn):
    if fn is None:
        return "linear"
    return getattr(fn, "__name__", type(fn).__name__)


def _is_plain_relu_layer(layer):
    if isinstance(layer, keras.layers.ReLU):
        return (
            layer.max_value is None
            and float(layer.negative_slope) == 0.0
            and float(layer.threshold) == 0.0
        )
    if isinstance(layer, keras.layers.Activation):
        return _activation_name(layer.activation) == "relu"
    return False


def _model_layers(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            "`model` must be a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) > 1:
        raise ValueError(
            "`model` must have a single (logits) output. "
            f"Received: {len(outputs)} outputs"
        )
    return [layer for layer in model.layers]


def _input_rank(model):
    try:
        return len(model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def _parse(model):
    """Returns the affine Keras layers in order, after validating the chain."""
    affines = []
    pending = None  # an affine layer whose ReLU has not been seen yet
    rank = _input_rank(model)
    for layer in _model_layers(model):
        if isinstance(layer, _IDENTITY):
            if isinstance(layer, keras.layers.Flatten):
                rank = 2
            continue
        if _is_plain_relu_layer(layer):
            if pending is None:
                raise ValueError(
                    f"ReLU layer {layer.name!r} must directly follow a linear "
                    "Dense/Conv2D layer."
                )
            pending = None
            continue
        if not isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            raise ValueError(
                f"Layer {layer.name!r} of type {type(layer).__name__} is not "
                "covered by the margin bounds (supported: Dense, SNDense, "
                "Conv2D, SNConv2D, ReLU, Flatten, Dropout, InputLayer)."
            )
        if pending is not None:
            raise ValueError(
                f"Layer {pending.name!r} has a linear activation but is not "
                "the last layer and is not followed by a ReLU; Theorem 2 needs "
                "ReLU after every hidden layer."
            )
        if isinstance(layer, keras.layers.Dense):
            if rank is not None and rank > 2:
                raise ValueError(
                    f"Dense layer {layer.name!r} receives a rank-{rank} input; "
                    "put a Flatten layer before it."
                )
            rank = 2
        elif isinstance(layer, keras.layers.Conv2D):
            if layer.data_format != "channels_last" or layer.groups != 1:
                raise ValueError(
                    f"Conv2D layer {layer.name!r} must be channels_last with "
                    f"groups=1. Received: data_format={layer.data_format}, "
                    f"groups={layer.groups}"
                )
            rank = 4
        act = _activation_name(layer.activation)
        if act not in ("relu", "linear"):
            raise ValueError(
                f"Layer {layer.name!r} has activation {act!r}; the margin "
                "bounds need ReLU hidden layers and linear logits."
            )
        affines.append((layer, act))
        if act == "linear":
            pending = layer
    if not affines:
        raise ValueError("`model` has no Dense or Conv2D layer.")
    last, act = affines[-1]
    if pending is None or act != "linear":
        raise ValueError(
            f"The last layer {last.name!r} must be linear (logits), with no "
            "activation after it."
        )
    if not isinstance(last, keras.layers.Dense):
        raise ValueError(
            f"The last layer {last.name!r} must be a Dense layer (logits)."
        )
    if len(affines) < 2:
        raise ValueError(
            "The margin bounds need at least 2 Dense/Conv2D layers. "
            f"Received: {len(affines)}"
        )
    return [layer for layer, _ in affines]


def check_supported(model) -> None:
    """Validates that the margin bounds apply to ``model``.

    Call it once when building or compiling a model that will use
    :func:`margin_penalty_from_model`.

    Args:
        model: a built ``keras.Model``.

    Raises:
        ValueError: naming the first layer or activation that Theorem 2 (or
            its convolution/bias extension) does not cover.
    """
    _parse(model)


def model_layers(model) -> list:
    """The model's affine layers with their effective kernels and biases.

    Args:
        model: a supported ``keras.Model`` (see :func:`check_supported`).

    Returns:
        List of :class:`~nsr_tf.bounds.affine.AffineLayer` usable as the
        ``kernels`` argument of the functions of
        :mod:`nsr_tf.bounds.margin`.

    Raises:
        ValueError: if the model is not supported.
    """
    out = []
    for layer in _parse(model):
        kernel = effective_kernel(layer)
        bias = layer.bias if layer.use_bias else None
        if isinstance(layer, keras.layers.Conv2D):
            out.append(
                aff.conv_layer(
                    kernel,
                    bias,
                    strides=tuple(layer.strides),
                    padding=layer.padding,
                    dilation_rate=tuple(layer.dilation_rate),
                )
            )
        else:
            out.append(aff.dense_layer(kernel, bias))
    return out


def model_kernels(model) -> list:
    """Effective Keras-layout kernels of a bias-free dense ReLU model.

    Args:
        model: a supported model made only of bias-free Dense/SNDense layers.

    Returns:
        List of ``(in, out)`` kernels (tensors or variables).

    Raises:
        ValueError: if the model is unsupported, has a convolution or a bias
            (use :func:`model_layers` for those).
    """
    layers = model_layers(model)
    if any(a.kind != "dense" or a.bias is not None for a in layers):
        raise ValueError(
            "`model_kernels` needs a bias-free dense model; use "
            "`model_layers` for convolutions or biases."
        )
    return [a.kernel for a in layers]


def pairwise_tau_zeta_from_model(
    model, x, *, eps_x, eps_w, variant="sound", eps_b=None
):
    """:func:`~nsr_tf.bounds.margin.pairwise_tau_zeta` for a Keras model.

    Args:
        model: a supported ``keras.Model``.
        x: clean inputs, shaped like the model's input.
        eps_x: input radius, >= 0.
        eps_w: weight radius, one number or one per Dense/Conv2D layer.
        variant: "paper", "lemma", "sound", "interval" or
            "interval_exact".
        eps_b: bias radius (defaults to ``eps_w``).

    Returns:
        ``(tau (K, K), zeta (B, K, K))``.

    Raises:
        ValueError: unsupported model or bad arguments.
    """
    return margin.pairwise_tau_zeta(
        model_layers(model),
        x,
        eps_x=eps_x,
        eps_w=eps_w,
        variant=variant,
        eps_b=eps_b,
    )


def margin_penalty_from_model(
    model,
    x,
    y,
    *,
    eps_x,
    eps_w,
    variant="sound",
    eps_b=None,
    first_preactivation=None,
):
    """:func:`~nsr_tf.bounds.margin.margin_penalty` for a Keras model.

    Differentiable with respect to the model's trainable kernels (through
    ``layers.effective_kernel`` for SN layers); usable inside a compiled
    ``train_step``.

    Args:
        model: a supported ``keras.Model``.
        x: clean inputs.
        y: integer labels ``(B,)`` or one-hot.
        eps_x: input radius, >= 0.
        eps_w: weight radius, one number or one per Dense/Conv2D layer.
        variant: "paper", "lemma", "sound", "interval" or
            "interval_exact".
        eps_b: bias radius (defaults to ``eps_w``).
        first_preactivation: optional clean first-layer pre-activation.

    Returns:
        ``(tau (B,), zeta (B,))``.

    Raises:
        ValueError: unsupported model or bad arguments.
    """
    return margin.margin_penalty(
        model_layers(model),
        x,
        y,
        eps_x=eps_x,
        eps_w=eps_w,
        variant=variant,
        eps_b=eps_b,
        first_preactivation=first_preactivation,
    )


def forward_with_margin_penalty_from_model(
    model, x, y, *, eps_x, eps_w, variant="sound", eps_b=None
):
    """Logits (from the effective kernels) and eq. 23's penalties, sharing
    one forward pass. SN power-iteration state is not updated.

    Returns:
        ``(logits (B, K), tau (B,), zeta (B,))``.

    Raises:
        ValueError: unsupported model or bad arguments.
    """
    return margin.forward_with_margin_penalty(
        model_layers(model),
        x,
        y,
        eps_x=eps_x,
        eps_w=eps_w,
        variant=variant,
        eps_b=eps_b,
    )
