"""capped_matmul: values and exact gradient of x W / max(1, s / beta)."""

import numpy as np
import pytest
import tensorflow as tf

from layers import capped_matmul
from layers import spectral


def _reference(x, kernel, u, beta, iterations):
    """The composite through autodiff: power iteration, then the matmul."""
    sigma, u_new = spectral.dense_power_iteration(
        kernel, u, iterations=iterations
    )
    return x @ kernel / tf.maximum(1.0, sigma / beta), u_new


def _numpy_forward(x, w, u, beta):
    """One power step and the capped matmul in float64 (sn.py, eq. 9)."""
    v = u @ w.T
    v = v / (np.linalg.norm(v) + 1e-12)
    wv = v @ w
    sigma = float(np.sum(wv * wv / (np.linalg.norm(wv) + 1e-12)))
    return x @ w / max(1.0, sigma / beta)


@pytest.mark.parametrize("iterations", [1, 2, 3])
@pytest.mark.parametrize("beta", [0.2, 1e3])  # The cap binds / does not.
@pytest.mark.parametrize(
    "x_shape, k_shape", [((6, 7), (7, 5)), ((2, 4, 3), (3, 9))]
)
def test_values_and_gradients_match_autodiff(
    iterations, beta, x_shape, k_shape, rng
):
    x = tf.constant(rng.normal(size=x_shape), tf.float32)
    kernel = tf.constant(rng.normal(size=k_shape), tf.float32)
    u = tf.constant(rng.normal(size=(1, k_shape[1])), tf.float32)
    weights = tf.constant(rng.normal(size=(*x_shape[:-1], k_shape[1])))
    weights = tf.cast(weights, tf.float32)

    def grads(fn):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            z, u_new = fn(x, kernel, u, beta, iterations)
            loss = tf.reduce_sum(weights * tf.sin(z))
        return (z, u_new, *tape.gradient(loss, [x, kernel]))

    def fused(x, kernel, u, beta, iterations):
        return capped_matmul.capped_matmul(
            x, kernel, u, beta, iterations=iterations
        )

    for got, want in zip(grads(fused), grads(_reference), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_kernel_gradient_matches_float64_finite_differences(rng):
    x = rng.normal(size=(5, 4))
    w = rng.normal(size=(4, 3))
    u = rng.normal(size=(1, 3))
    weights = rng.normal(size=(5, 3))
    beta = 0.5

    def loss64(w):
        return float(np.sum(weights * _numpy_forward(x, w, u, beta)))

    w_t = tf.constant(w, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(w_t)
        z, _ = capped_matmul.capped_matmul(
            tf.constant(x, tf.float32), w_t, tf.constant(u, tf.float32), beta
        )
        loss = tf.reduce_sum(tf.constant(weights, tf.float32) * z)
    grad = tape.gradient(loss, w_t).numpy()
    numeric = np.zeros_like(w)
    h = 1e-6
    for i in np.ndindex(*w.shape):
        step = np.zeros_like(w)
        step[i] = h
        numeric[i] = (loss64(w + step) - loss64(w - step)) / (2 * h)
    # The cap binds, so the gradient through sigma matters.
    assert _numpy_forward(x, w, u, beta)[0, 0] != (x @ w)[0, 0]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-5)


def test_next_vector_is_the_power_iteration_one_without_gradient(rng):
    kernel = tf.constant(rng.normal(size=(6, 4)), tf.float32)
    u = tf.constant(rng.normal(size=(1, 4)), tf.float32)
    x = tf.constant(rng.normal(size=(3, 6)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        _, u_new = capped_matmul.capped_matmul(x, kernel, u, 0.1)
        loss = tf.reduce_sum(u_new)
    _, want = spectral.dense_power_iteration(kernel, u)
    np.testing.assert_allclose(u_new, want, rtol=1e-6)
    grad = tape.gradient(loss, kernel)
    assert grad is None or not np.any(grad.numpy())


def test_half_precision_inputs(rng):
    kernel = tf.constant(rng.normal(size=(8, 4)), tf.float32)
    u = tf.constant(rng.normal(size=(1, 4)), tf.float32)
    x32 = tf.constant(rng.normal(size=(3, 8)), tf.float32)
    x16 = tf.cast(x32, tf.float16)
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        z16, _ = capped_matmul.capped_matmul(x16, kernel, u, 0.3)
        loss = tf.reduce_sum(tf.cast(z16, tf.float32))
    g16 = tape.gradient(loss, kernel)
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        z32, _ = _reference(x32, kernel, u, 0.3, 1)
        loss = tf.reduce_sum(z32)
    g32 = tape.gradient(loss, kernel)
    assert z16.dtype == tf.float16 and g16.dtype == tf.float32
    np.testing.assert_allclose(z16, z32, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(g16, g32, rtol=1e-2, atol=1e-2)


def test_compiled_matches_eager(rng):
    x = tf.constant(rng.normal(size=(4, 5)), tf.float32)
    kernel = tf.Variable(rng.normal(size=(5, 3)), dtype=tf.float32)
    u = tf.constant(rng.normal(size=(1, 3)), tf.float32)

    def grad():
        with tf.GradientTape() as tape:
            z, _ = capped_matmul.capped_matmul(x, kernel, u, 0.4)
            loss = tf.reduce_sum(tf.square(z))
        return tape.gradient(loss, kernel)

    for jit in (False, True):
        compiled = tf.function(grad, jit_compile=jit)
        np.testing.assert_allclose(compiled(), grad(), rtol=1e-5, atol=1e-6)
