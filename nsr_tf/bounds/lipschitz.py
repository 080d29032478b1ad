"""Global l2 Lipschitz constant of a chain Keras model, layer by layer.

``L = prod_layers Lip_2(layer)``: an upper bound on the l2 Lipschitz constant
of the map from inputs to logits, from the contribution of each layer listed
in :data:`LAYER_CONTRIBUTIONS` (first matching class wins):

==========================  ================================================
Layer                       l2 Lipschitz constant used
==========================  ================================================
Dense, SNDense              ``sigma_max`` of the *effective* kernel (the one
                            the forward pass applies; ``W / max(1,
                            sigma_hat / beta)`` for SN layers), by exact
                            SVD in float64, times the activation's constant.
                            The running ``sigma_hat`` of an SN layer is
                            never used as the norm: one power iteration per
                            step lets the true norm run above ``beta``.
Conv2D, SNConv2D            the operator norm of the true strided/padded/
                            dilated convolution on the layer's input shape
                            (power iteration on conv / conv-transpose,
                            ``layers.conv_operator_norm``; it converges from
                            below, so the estimate is inflated by
                            ``conv_rtol``), times the activation's constant.
ReLU, ELU, LeakyReLU,       ``max(1, |slope|)`` of the piecewise-linear or
Activation                  ELU function: relu, elu (alpha <= 1), linear,
                            tanh, softsign, softplus, leaky_relu 1;
                            sigmoid 1/4. Other activations raise.
MaxPooling2D                ``sqrt(ceil(kh/sh) * ceil(kw/sw))``: each output
                            is 1-Lipschitz in l_inf of its window, so the
                            squared output change is at most the squared
                            input change summed over the windows covering
                            an input, at most that many; 1 when the windows
                            do not overlap (stride >= pool size).
GlobalMaxPooling2D          1 (every input lies in one window).
AveragePooling2D            its operator norm (a linear map; power iteration
                            on one channel, inflated by ``conv_rtol``).
GlobalAveragePooling2D      ``1 / sqrt(H W)`` exactly.
InputLayer, Flatten,        1 (identities or permutations; Dropout is the
Reshape, Dropout            identity at inference).
anything else               ``ValueError`` naming the layer class
                            (BatchNormalization, LRN, merges, ...).
==========================  ================================================

Reference:
    Szegedy et al. 2014 (product of layer norms); Tsuzuku, Sato and Sugiyama
    2018 (the sqrt(2) L eps margin certificate); Farnia et al. 2019, App. B
    (power iteration on the convolution operator).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from layers import effective_kernel
from layers import spectral

#: Activation name -> l2 Lipschitz constant (elementwise functions).
ACTIVATION_LIPSCHITZ = {
    "linear": 1.0,
    "relu": 1.0,
    "elu": 1.0,
    "leaky_relu": 1.0,
    "tanh": 1.0,
    "softsign": 1.0,
    "softplus": 1.0,
    "sigmoid": 0.25,
}

#: Default number of power-iteration steps on convolution/pooling operators.
CONV_ITERATIONS = 1000
#: Relative inflation of power-iteration estimates (they converge from below).
CONV_RTOL = 1e-3


def _activation_constant(layer, fn):
    name = "linear" if fn is None else getattr(fn, "__name__", str(fn))
    if name not in ACTIVATION_LIPSCHITZ:
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) has activation "
            f"{name!r}, whose Lipschitz constant is not tabulated (supported: "
            f"{sorted(ACTIVATION_LIPSCHITZ)})."
        )
    return ACTIVATION_LIPSCHITZ[name]


def _input_shape(layer):
    shape = tuple(layer.input.shape[1:])
    if any(d is None for d in shape):
        raise ValueError(
            f"Layer {layer.name!r} needs a fully known input shape to bound "
            f"its operator norm. Received: input shape {shape}"
        )
    return tuple(int(d) for d in shape)


def _dense(layer, opts):
    kernel = np.asarray(effective_kernel(layer), dtype=np.float64)
    sigma = float(np.linalg.svd(kernel, compute_uv=False)[0])
    return sigma * _activation_constant(layer, layer.activation)


def _conv(layer, opts):
    if layer.data_format != "channels_last" or layer.groups != 1:
        raise ValueError(
            f"Conv2D layer {layer.name!r} must be channels_last with groups=1."
        )
    sigma = spectral.conv_operator_norm(
        effective_kernel(layer),
        _input_shape(layer),
        strides=tuple(layer.strides),
        padding=layer.padding,
        dilation_rate=tuple(layer.dilation_rate),
        iterations=opts["iterations"],
    )
    scale = sigma * (1.0 + opts["rtol"])
    return scale * _activation_constant(layer, layer.activation)


def _relu_layer(layer, opts):
    return max(1.0, abs(float(layer.negative_slope)))


def _elu_layer(layer, opts):
    return max(1.0, float(getattr(layer, "alpha", 1.0)))


def _activation_layer(layer, opts):
    return _activation_constant(layer, layer.activation)


def _max_pool(layer, opts):
    (kh, kw), (sh, sw) = layer.pool_size, layer.strides
    return math.sqrt(math.ceil(kh / sh) * math.ceil(kw / sw))


def linear_operator_norm(fn, input_shape, *, iterations, seed=0):
    """Largest singular value of a linear ``fn`` on ``(1, *input_shape)``.

    Power iteration on ``fn^T fn`` (the transpose by autodiff).

    Args:
        fn: a linear map of a batch of one example.
        input_shape: shape of one example.
        iterations: number of steps.
        seed: seed of the start vector.

    Returns:
        The estimate (a Python float, converging from below).
    """
    v = tf.random.stateless_normal(
        (1, *input_shape), [seed, 0], dtype=tf.float64
    )

    @tf.function
    def run(v):
        def body(i, v):
            with tf.GradientTape() as tape:
                tape.watch(v)
                out = fn(v)
            w = tape.gradient(out, v, output_gradients=out)  # fn^T fn v
            return i + 1, w / tf.norm(w)

        _, v = tf.while_loop(
            lambda i, v: i < iterations, body, (0, v / tf.norm(v))
        )
        return tf.norm(fn(v))

    return float(run(v))


def _avg_pool(layer, opts):
    h, w, _ = _input_shape(layer)
    one_channel = keras.layers.AveragePooling2D(
        pool_size=layer.pool_size,
        strides=layer.strides,
        padding=layer.padding,
        dtype="float64",
    )
    sigma = linear_operator_norm(
        one_channel, (h, w, 1), iterations=opts["iterations"]
    )
    return sigma * (1.0 + opts["rtol"])


def _global_avg_pool(layer, opts):
    h, w, _ = _input_shape(layer)
    return 1.0 / math.sqrt(h * w)


def _one(layer, opts):
    return 1.0


#: Layer class -> (rule, contribution function). Order matters: first match.
LAYER_CONTRIBUTIONS = (
    (keras.layers.Dense, "sigma_max(effective kernel) x activation", _dense),
    (keras.layers.Conv2D, "conv operator norm x activation", _conv),
    (keras.layers.ReLU, "max(1, |negative_slope|)", _relu_layer),
    (keras.layers.LeakyReLU, "max(1, |negative_slope|)", _relu_layer),
    (keras.layers.ELU, "max(1, alpha)", _elu_layer),
    (keras.layers.Activation, "activation table", _activation_layer),
    (keras.layers.MaxPooling2D, "sqrt(ceil(k/s) products)", _max_pool),
    (keras.layers.GlobalMaxPooling2D, "1", _one),
    (keras.layers.AveragePooling2D, "operator norm", _avg_pool),
    (keras.layers.GlobalAveragePooling2D, "1/sqrt(HW)", _global_avg_pool),
    (keras.layers.InputLayer, "1", _one),
    (keras.layers.Flatten, "1", _one),
    (keras.layers.Reshape, "1", _one),
    (keras.layers.Dropout, "1 (identity at inference)", _one),
)


def layer_lipschitz(layer, *, iterations=CONV_ITERATIONS, rtol=CONV_RTOL):
    """The l2 Lipschitz constant one layer contributes (table above).

    Args:
        layer: a built Keras layer of a chain model.
        iterations: power-iteration steps for convolutions and pooling.
        rtol: relative inflation of power-iteration estimates.

    Returns:
        A Python float.

    Raises:
        ValueError: a layer class (or activation) not in the table.
    """
    for cls, _, fn in LAYER_CONTRIBUTIONS:
        if isinstance(layer, cls):
            return float(fn(layer, {"iterations": iterations, "rtol": rtol}))
    raise ValueError(
        f"Layer {layer.name!r} of class {type(layer).__name__} has no known "
        "l2 Lipschitz constant; supported: "
        f"{sorted({c.__name__ for c, _, _ in LAYER_CONTRIBUTIONS})}."
    )


def _check_chain(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            "`model` must be a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    if len(getattr(model, "outputs", None) or []) > 1:
        raise ValueError("`model` must have a single (logits) output.")
    layers = list(model.layers)
    for prev, layer in zip(layers[:-1], layers[1:], strict=True):
        try:
            chained = layer.input is prev.output
        except (AttributeError, ValueError):
            chained = True  # Sequential/subclassed: order is the chain
        if not chained:
            raise ValueError(
                f"`model` must be a chain: layer {layer.name!r} does not take "
                f"the output of {prev.name!r} as its input."
            )
    return layers


def layer_lipschitz_constants(model, **kwargs) -> list:
    """``[(layer name, constant), ...]`` for every layer of a chain model."""
    return [
        (layer.name, layer_lipschitz(layer, **kwargs))
        for layer in _check_chain(model)
    ]


def lipschitz_constant(model, **kwargs) -> float:
    """Upper bound ``L`` on the l2 Lipschitz constant of ``model``.

    Args:
        model: a built chain ``keras.Model`` (Sequential or functional
            without branches) giving logits.
        **kwargs: ``iterations`` and ``rtol`` of :func:`layer_lipschitz`.

    Returns:
        The product of the layers' constants (a Python float).

    Raises:
        ValueError: not a chain model, or a layer not in the table.
    """
    return float(
        np.prod([c for _, c in layer_lipschitz_constants(model, **kwargs)])
    )
