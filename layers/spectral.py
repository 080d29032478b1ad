"""Power-iteration estimates of the spectral norm of dense and conv operators.

Pure numerics, no layer classes. Every function computes in float32 whatever
the dtype of the kernel it receives (a mixed-precision policy must not degrade
the estimate), and every step is differentiable: no ``stop_gradient`` is
inserted, so autodiff flows through the power iteration as in the reference
implementation (Farnia et al. 2019, ``sn.py: weights_spectral_norm``).

Two operators are handled:

* dense: ``x -> x @ W`` for a kernel ``W`` of shape ``[in, out]``; ``u`` lives
  in the output space, shape ``[1, out]``;
* conv: ``x -> conv2d(x, W)`` with the layer's own stride, padding and
  dilation, as a linear map on one input example; ``u`` lives in the input
  space, shape ``[1, H, W, C_in]`` (NHWC). Its adjoint is the transposed
  convolution with the same arguments and an explicit output shape, so any
  stride, padding, dilation and odd or non-square size is handled exactly.

The Miyato et al. (2018) "kernel" method is the dense path applied to the
kernel reshaped to ``[kh * kw * C_in, C_out]`` (see ``kernel_as_matrix``).

Reference:
    Farnia, Zhang and Tse, "Generalizable Adversarial Training via Spectral
    Normalization", ICLR 2019, eq. 9 and App. B (power iteration for the
    convolution operator).
"""

import functools
import math

import numpy as np
import tensorflow as tf

#: Added to the l2 norm before dividing (``sn.py: l2_norm``).
NORM_EPSILON = 1e-12

#: Default number of power-iteration steps of the ``*_operator_norm`` helpers.
DEFAULT_ITERATIONS = 100

_PADDINGS = ("same", "valid")


def l2_normalize(x: tf.Tensor) -> tf.Tensor:
    """Divides ``x`` by its l2 norm over the whole tensor plus 1e-12."""
    return x / (tf.sqrt(tf.reduce_sum(tf.square(x))) + NORM_EPSILON)


def kernel_as_matrix(kernel: tf.Tensor) -> tf.Tensor:
    """Reshapes a conv kernel ``[kh, kw, cin, cout]`` to ``[kh*kw*cin, cout]``.

    Reference:
        Miyato et al., "Spectral Normalization for GANs", ICLR 2018, §2.2.
    """
    return tf.reshape(kernel, [-1, kernel.shape[-1]])


def dense_power_iteration(
    kernel: tf.Tensor, u: tf.Tensor, *, iterations: int = 1
) -> tuple[tf.Tensor, tf.Tensor]:
    """Runs ``iterations`` power-iteration steps on a dense kernel.

    One step is ``v = n(u W^T)``, ``u' = n(v W)``, ``sigma = v W u'^T`` with
    ``n`` the global l2 normalization. Differentiable in ``kernel``.

    Args:
        kernel: ``[in, out]`` kernel (any float dtype; used in float32).
        u: ``[1, out]`` current left vector.
        iterations: Python int >= 1, number of steps (unrolled).

    Returns:
        ``(sigma, u_new)``: scalar float32 estimate and the ``[1, out]``
        float32 vector to store for the next step.

    Reference:
        Farnia et al. 2019, App. B; ``sn.py: weights_spectral_norm``.
    """
    kernel = tf.cast(kernel, tf.float32)
    u = tf.cast(u, tf.float32)
    for _ in range(iterations):
        v = l2_normalize(tf.matmul(u, kernel, transpose_b=True))
        wv = tf.matmul(v, kernel)
        u = l2_normalize(wv)
    # sigma = <v W, u'>; v W is the un-normalized u'.
    sigma = tf.reduce_sum(wv * u)
    return sigma, u


def _conv_args(strides, padding, dilation_rate):
    strides = _pair(strides, "strides")
    dilations = _pair(dilation_rate, "dilation_rate")
    if not isinstance(padding, str) or padding.lower() not in _PADDINGS:
        raise ValueError(
            "`padding` must be one of 'same', 'valid'. "
            f"Received: padding={padding!r}"
        )
    return strides, padding.upper(), dilations


def _pair(value, name):
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    value = tuple(int(x) for x in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(
            f"`{name}` must be a positive int or a pair of positive ints. "
            f"Received: {name}={value}"
        )
    return value


def conv_apply(kernel, x, *, strides=1, padding="same", dilation_rate=1):
    """Applies the convolution operator (as the Keras TF backend does)."""
    strides, padding, dilations = _conv_args(strides, padding, dilation_rate)
    return tf.nn.convolution(
        x, kernel, strides=strides, padding=padding, dilations=dilations
    )


def conv_transpose_apply(
    kernel, y, input_shape, *, strides=1, padding="same", dilation_rate=1
):
    """Applies the adjoint of ``conv_apply`` to ``y``, giving an input shape.

    Args:
        kernel: ``[kh, kw, cin, cout]``.
        y: ``[n, H_out, W_out, cout]``.
        input_shape: ``(H, W, C_in)`` of one input example.
        strides, padding, dilation_rate: as for the convolution.

    Returns:
        ``[n, H, W, C_in]`` tensor.
    """
    strides, padding, dilations = _conv_args(strides, padding, dilation_rate)
    output_shape = [tf.shape(y)[0], *[int(d) for d in input_shape]]
    return tf.nn.conv2d_transpose(
        y,
        kernel,
        output_shape=output_shape,
        strides=strides,
        padding=padding,
        dilations=dilations,
    )


def conv_power_iteration(
    kernel: tf.Tensor,
    u: tf.Tensor,
    *,
    strides=1,
    padding: str = "same",
    dilation_rate=1,
    iterations: int = 1,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Runs ``iterations`` power-iteration steps on a convolution operator.

    One step is ``v = n(conv(u, W))``, ``u' = n(conv_transpose(v, W))`` and
    ``sigma = <conv(u', W), v>``. Differentiable in ``kernel``.

    Args:
        kernel: ``[kh, kw, cin, cout]`` kernel (used in float32).
        u: ``[1, H, W, cin]`` current input-space vector (NHWC).
        strides: int or pair, the layer's strides.
        padding: ``"same"`` or ``"valid"``.
        dilation_rate: int or pair.
        iterations: Python int >= 1, number of steps (unrolled).

    Returns:
        ``(sigma, u_new)``: scalar float32 estimate and the float32 vector
        shaped like ``u`` to store for the next step.

    Reference:
        Farnia et al. 2019, App. B ("tighter" SN of the conv operator);
        ``sn.py: weights_spectral_norm(tighter_sn=True)``.
    """
    kernel = tf.cast(kernel, tf.float32)
    u = tf.cast(u, tf.float32)
    args = dict(strides=strides, padding=padding, dilation_rate=dilation_rate)
    input_shape = u.shape[1:]
    wu = conv_apply(kernel, u, **args)
    for _ in range(iterations):
        v = l2_normalize(wu)
        u = l2_normalize(conv_transpose_apply(kernel, v, input_shape, **args))
        wu = conv_apply(kernel, u, **args)
    sigma = tf.reduce_sum(wu * v)
    return sigma, u


def _check_iterations(iterations):
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, (int, np.integer))
        or iterations < 1
    ):
        raise ValueError(
            "`iterations` must be an int >= 1. "
            f"Received: iterations={iterations}"
        )


@functools.lru_cache(maxsize=256)
def _dense_norm_fn(shape):
    """One concrete compiled ``while_loop`` per kernel shape."""

    def run(kernel, u, iterations):
        def body(i, u):
            return i + 1, dense_power_iteration(kernel, u)[1]

        _, u = tf.while_loop(lambda i, u: i < iterations - 1, body, (0, u))
        return dense_power_iteration(kernel, u)[0]

    return _concrete(run, shape, (1, shape[1]))


@functools.lru_cache(maxsize=256)
def _conv_norm_fn(kernel_shape, u_shape, strides, padding, dilation_rate):
    """One concrete compiled ``while_loop`` per operator configuration."""
    args = dict(strides=strides, padding=padding, dilation_rate=dilation_rate)

    def run(kernel, u, iterations):
        def body(i, u):
            return i + 1, conv_power_iteration(kernel, u, **args)[1]

        _, u = tf.while_loop(lambda i, u: i < iterations - 1, body, (0, u))
        return conv_power_iteration(kernel, u, **args)[0]

    return _concrete(run, kernel_shape, u_shape)


def _concrete(fn, kernel_shape, u_shape):
    # A traced ConcreteFunction per configuration: calling it never retraces.
    return tf.function(fn).get_concrete_function(
        tf.TensorSpec(kernel_shape, tf.float32),
        tf.TensorSpec(u_shape, tf.float32),
        tf.TensorSpec([], tf.int32),
    )


def _start_vector(shape, u, seed):
    if u is not None:
        u = tf.cast(tf.convert_to_tensor(u), tf.float32)
        if tuple(u.shape) != tuple(shape):
            raise ValueError(
                f"`u` must have shape {tuple(shape)}. Received: u.shape="
                f"{tuple(u.shape)}"
            )
        return u
    return tf.random.stateless_normal(shape, seed=[seed, 0], dtype=tf.float32)


def dense_operator_norm(
    kernel,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    u=None,
    seed: int = 0,
) -> float:
    """Estimates the largest singular value of a dense kernel.

    Args:
        kernel: ``[in, out]`` array or tensor.
        iterations: number of power-iteration steps (>= 1), run in one
            compiled ``tf.while_loop``.
        u: optional ``[1, out]`` start vector (e.g. a layer's ``u``); a seeded
            Gaussian vector otherwise.
        seed: seed of the Gaussian start vector.

    Returns:
        The estimate of ``sigma_max(kernel)`` as a Python float (a lower
        bound that converges to it).

    Raises:
        ValueError: if ``kernel`` is not 2-D, ``iterations < 1`` or ``u`` has
            the wrong shape.

    Reference:
        Farnia et al. 2019, App. B.
    """
    kernel = tf.cast(tf.convert_to_tensor(kernel), tf.float32)
    if kernel.shape.rank != 2:
        raise ValueError(
            "`kernel` must be 2-D [in, out]. Received: "
            f"kernel.shape={tuple(kernel.shape)}"
        )
    _check_iterations(iterations)
    u = _start_vector((1, kernel.shape[1]), u, seed)
    run = _dense_norm_fn(tuple(kernel.shape))
    return float(run(kernel, u, tf.constant(iterations)))


def conv_operator_norm(
    kernel,
    input_shape,
    *,
    strides=1,
    padding: str = "same",
    dilation_rate=1,
    iterations: int = DEFAULT_ITERATIONS,
    u=None,
    seed: int = 0,
) -> float:
    """Estimates the spectral norm of the convolution operator.

    The operator is ``x -> conv2d(x, kernel)`` on one NHWC example of shape
    ``input_shape`` with the given stride, padding and dilation: the true
    linear map of the layer, not the reshaped kernel.

    Args:
        kernel: ``[kh, kw, cin, cout]`` array or tensor.
        input_shape: ``(H, W, C_in)`` of one input example.
        strides: int or pair.
        padding: ``"same"`` or ``"valid"``.
        dilation_rate: int or pair.
        iterations: number of power-iteration steps (>= 1), run in one
            compiled ``tf.while_loop``.
        u: optional ``[1, H, W, C_in]`` start vector; a seeded Gaussian
            vector otherwise.
        seed: seed of the Gaussian start vector.

    Returns:
        The estimate of the operator's largest singular value (a Python
        float; a lower bound that converges to it).

    Raises:
        ValueError: on a kernel that is not 4-D, an ``input_shape`` that is
            not ``(H, W, C_in)`` with ``C_in`` matching the kernel, an
            unknown padding, bad strides/dilation, ``iterations < 1`` or a
            ``u`` of the wrong shape.

    Reference:
        Farnia et al. 2019, App. B; ``sn.py`` (``tighter_sn=True``).
    """
    kernel = tf.cast(tf.convert_to_tensor(kernel), tf.float32)
    if kernel.shape.rank != 4:
        raise ValueError(
            "`kernel` must be 4-D [kh, kw, cin, cout]. Received: "
            f"kernel.shape={tuple(kernel.shape)}"
        )
    input_shape = tuple(input_shape)
    if (
        len(input_shape) != 3
        or any(d is None or int(d) < 1 for d in input_shape)
        or int(input_shape[-1]) != kernel.shape[2]
    ):
        raise ValueError(
            "`input_shape` must be (H, W, C_in) with known positive sizes "
            f"and C_in={kernel.shape[2]}. Received: input_shape={input_shape}"
        )
    strides, padding_tf, dilations = _conv_args(strides, padding, dilation_rate)
    _check_iterations(iterations)
    u = _start_vector((1, *[int(d) for d in input_shape]), u, seed)
    run = _conv_norm_fn(
        tuple(kernel.shape),
        tuple(u.shape),
        strides,
        padding_tf.lower(),
        dilations,
    )
    return float(run(kernel, u, tf.constant(iterations)))


def conv_output_size(size, kernel_size, stride, padding, dilation):
    """Spatial output size of a convolution along one axis (TF rules)."""
    if padding.lower() == "same":
        return math.ceil(size / stride)
    effective = (kernel_size - 1) * dilation + 1
    return max(0, math.ceil((size - effective + 1) / stride))
