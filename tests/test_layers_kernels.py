"""layers.effective_kernel / layers.is_spectral against exact-SVD references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import layers
from tests.layer_contract import conv_operator_matrix

# beta below the kernel's sigma (the cap binds) and above it (no rescaling).
BETA_FRACTIONS = [0.5, 2.0]


def _reference(kernel, sigma, beta):
    """``W * min(1, beta / sigma)`` (Farnia et al. 2019, eq. 9)."""
    return np.asarray(kernel, np.float64) * min(1.0, beta / sigma)


@pytest.mark.parametrize("fraction", BETA_FRACTIONS)
def test_dense_effective_kernel_matches_exact_svd(fraction, rng):
    kernel = rng.normal(size=(5, 3)).astype(np.float32)
    _, s, vt = np.linalg.svd(kernel.astype(np.float64))
    beta = fraction * s[0]
    layer = layers.SNDense(3, beta=beta, use_bias=False)
    layer.build((None, 5))
    # u = the exact top right singular vector: one power step is exact.
    layer.set_weights([kernel, vt[:1].astype(np.float32)])
    u0 = layer.u.numpy().copy()
    got = layers.effective_kernel(layer)
    np.testing.assert_allclose(
        got, _reference(kernel, s[0], beta), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(layer.u.numpy(), u0)  # u left alone.
    # It is the kernel the inference forward pass applies.
    x = rng.normal(size=(4, 5)).astype(np.float32)
    np.testing.assert_allclose(
        layer(x, training=False), x @ got.numpy(), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("fraction", BETA_FRACTIONS)
def test_conv_effective_kernel_matches_exact_svd(fraction, rng):
    hwc, strides, padding = (6, 5, 2), 2, "same"
    kernel = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    matrix = conv_operator_matrix(kernel, hwc, strides, padding, 1)
    u_svd, s, _ = np.linalg.svd(matrix)
    beta = fraction * s[0]
    layer = layers.SNConv2D(
        3, 3, strides=strides, padding=padding, beta=beta, use_bias=False
    )
    layer.build((None, *hwc))
    # u = the exact top input-space singular vector of the true operator.
    start = u_svd[:, 0].reshape(1, *hwc).astype(np.float32)
    layer.set_weights([kernel, start])
    got = layers.effective_kernel(layer)
    np.testing.assert_allclose(
        got, _reference(kernel, s[0], beta), rtol=1e-5, atol=1e-6
    )
    x = rng.normal(size=(2, *hwc)).astype(np.float32)
    want = keras.ops.conv(x, got, strides=strides, padding=padding)
    np.testing.assert_allclose(
        layer(x, training=False), want, rtol=1e-5, atol=1e-5
    )


def test_effective_kernel_honours_kernel_override(rng):
    layer = layers.SNDense(3, beta=0.1)
    layer.build((None, 4))
    plain = keras.layers.Dense(3)
    plain.build((None, 4))
    sub = tf.constant(rng.normal(size=(4, 3)), tf.float32)
    with layers.kernel_override({layer: sub, plain: sub}):
        np.testing.assert_array_equal(layers.effective_kernel(layer), sub)
        # Plain layers ignore overrides, in their call and here alike.
        assert layers.effective_kernel(plain) is plain.kernel
    np.testing.assert_array_equal(
        layers.effective_kernel(layer), layer.normalized_kernel()
    )


def test_plain_layer_effective_kernel_is_its_kernel_variable():
    conv = keras.layers.Conv2D(2, 3)
    conv.build((None, 5, 5, 1))
    assert layers.effective_kernel(conv) is conv.kernel


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: layers.SNDense(2), True),
        (lambda: layers.SNConv2D(2, 3), True),
        (lambda: layers.SNConv2D(2, 3, method="kernel"), True),
        (lambda: keras.layers.Dense(2), False),
        (lambda: keras.layers.Conv2D(2, 3), False),
        (lambda: keras.layers.Flatten(), False),
        (lambda: "SNDense", False),
    ],
)
def test_is_spectral(make, expected):
    assert layers.is_spectral(make()) is expected


def test_effective_kernel_rejects_bad_layers():
    with pytest.raises(ValueError, match="must be a built Keras layer"):
        layers.effective_kernel(layers.SNDense(2))
    with pytest.raises(ValueError, match="must be a built Keras layer"):
        layers.effective_kernel(np.ones((2, 2)))
    flatten = keras.layers.Flatten()
    flatten.build((None, 2, 2))
    with pytest.raises(ValueError, match="must have a kernel"):
        layers.effective_kernel(flatten)
