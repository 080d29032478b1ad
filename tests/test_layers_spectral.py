"""layers.spectral against exact SVDs of explicitly built operator matrices."""

import numpy as np
import pytest
import tensorflow as tf

from layers import spectral
from tests.layer_contract import conv_operator_matrix
from tests.layer_contract import pair as _pair

# (H, W, C_in, C_out, kernel, strides, padding, dilation): strides 1/2/3,
# both paddings, kernels 1..5 (and non-square), dilation 1/2, non-square
# inputs, 1-3 input channels.
CONV_CASES = [
    (7, 6, 2, 3, 3, 1, "same", 1),
    (7, 6, 2, 3, 3, 1, "valid", 1),
    (6, 7, 1, 2, 1, 1, "same", 1),
    (5, 5, 3, 2, 2, 1, "same", 1),
    (7, 6, 2, 2, 2, 2, "valid", 1),
    (7, 6, 3, 2, 5, 2, "same", 1),
    (7, 5, 1, 3, 4, 3, "valid", 1),
    (7, 6, 2, 3, 3, 3, "same", 1),
    (6, 7, 2, 2, 3, 1, "valid", 2),
    (7, 6, 1, 2, 3, 1, "same", 2),
    (7, 7, 3, 1, 2, 1, "same", 2),
    (6, 5, 2, 3, 4, 2, "same", 1),
    (7, 6, 1, 1, 5, 1, "valid", 1),
    (5, 7, 3, 3, 1, 2, "valid", 1),
    (7, 6, 2, 2, 5, 3, "same", 1),
    (4, 6, 2, 4, 4, 1, "same", 2),
    (7, 6, 2, 2, (3, 2), (2, 1), "same", 1),
    (7, 6, 2, 2, (2, 4), (1, 3), "valid", 1),
]


def top_singular_values(matrix, k=2):
    return np.linalg.svd(matrix, compute_uv=False)[:k]


def random_conv_kernel(rng, k, cin, cout):
    kh, kw = _pair(k)
    return rng.normal(size=(kh, kw, cin, cout)).astype(np.float32)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv_operator_norm_matches_exact_svd(case, rng):
    h, w, cin, cout, k, strides, padding, dilation = case
    kernel = random_conv_kernel(rng, k, cin, cout)
    matrix = conv_operator_matrix(
        kernel, (h, w, cin), strides, padding, dilation
    )
    exact = top_singular_values(matrix)[0]
    estimate = spectral.conv_operator_norm(
        kernel,
        (h, w, cin),
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        iterations=2000,
    )
    np.testing.assert_allclose(estimate, exact, rtol=1e-4)


def test_reference_matrix_is_the_conv_not_its_kernel_reshape(rng):
    # Sanity of the reference itself: on a 3x3 stride-1 same conv the
    # operator norm differs from the reshaped-kernel norm.
    kernel = random_conv_kernel(rng, 3, 2, 3)
    matrix = conv_operator_matrix(kernel, (6, 6, 2), 1, "same", 1)
    operator = top_singular_values(matrix)[0]
    reshaped = top_singular_values(kernel.reshape(-1, 3).astype(np.float64))
    assert abs(operator - reshaped[0]) > 0.05 * operator


@pytest.mark.parametrize("shape", [(5, 3), (3, 7), (12, 12), (1, 4), (6, 1)])
def test_dense_operator_norm_matches_exact_svd(shape, rng):
    kernel = rng.normal(size=shape)
    exact = top_singular_values(kernel)[0]
    estimate = spectral.dense_operator_norm(kernel, iterations=2000)
    np.testing.assert_allclose(estimate, exact, rtol=1e-4)


def test_dense_power_iteration_closed_form():
    # diag(3, 1): sigma = 3, top left singular vector e1.
    kernel = tf.constant([[3.0, 0.0], [0.0, 1.0]])
    sigma, u = spectral.dense_power_iteration(
        kernel, tf.constant([[1.0, 1.0]]), iterations=30
    )
    np.testing.assert_allclose(float(sigma), 3.0, rtol=1e-6)
    np.testing.assert_allclose(np.abs(u.numpy()), [[1.0, 0.0]], atol=1e-6)


def test_one_step_matches_numpy_rederivation(rng):
    # One conv step, written out with the explicit matrix A (x -> x A).
    kernel = random_conv_kernel(rng, 3, 2, 2)
    shape = (5, 6, 2)
    a = conv_operator_matrix(kernel, shape, 2, "same", 1)
    u = rng.normal(size=(1, *shape)).astype(np.float32)
    sigma, u_new = spectral.conv_power_iteration(
        kernel, u, strides=2, padding="same"
    )

    def normalize(x):
        return x / (np.linalg.norm(x) + 1e-12)

    v = normalize(u.reshape(1, -1).astype(np.float64) @ a)
    u_ref = normalize(v @ a.T)
    sigma_ref = ((u_ref @ a) @ v.T).item()
    np.testing.assert_allclose(u_new.numpy().reshape(1, -1), u_ref, atol=1e-5)
    np.testing.assert_allclose(float(sigma), sigma_ref, rtol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_sigma_gradient_matches_finite_differences(kind, rng):
    # sigma_hat(W) for a fixed u: one power step, no stop_gradient.
    if kind == "conv":
        kernel = tf.constant(random_conv_kernel(rng, 3, 2, 3))
        u = tf.constant(rng.normal(size=(1, 7, 6, 2)), tf.float32)

        def fn(k, u):
            return spectral.conv_power_iteration(
                k, u, strides=2, padding="valid"
            )[0]

    else:
        kernel = tf.constant(rng.normal(size=(6, 4)), tf.float32)
        u = tf.constant(rng.normal(size=(1, 4)), tf.float32)

        def fn(k, u):
            return spectral.dense_power_iteration(k, u)[0]

    with tf.GradientTape() as tape:
        tape.watch(kernel)
        sigma = fn(kernel, u)
    grad = tape.gradient(sigma, kernel).numpy().astype(np.float64)
    h = 1e-2
    for _ in range(3):
        d = rng.normal(size=kernel.shape).astype(np.float32)
        d /= np.linalg.norm(d)
        plus = float(fn(kernel + h * d, u))
        minus = float(fn(kernel - h * d, u))
        numeric = (plus - minus) / (2 * h)
        analytic = float(np.sum(grad * d))
        np.testing.assert_allclose(analytic, numeric, rtol=2e-3, atol=1e-4)


def test_power_iteration_runs_in_float32_for_half_kernels(rng):
    kernel = rng.normal(size=(6, 4)).astype(np.float16)
    sigma, u = spectral.dense_power_iteration(
        tf.constant(kernel), tf.ones((1, 4), tf.float16)
    )
    assert sigma.dtype == tf.float32 and u.dtype == tf.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"padding": "full"}, "`padding` must be one of"),
        ({"strides": 0}, "`strides` must be"),
        ({"dilation_rate": (1, 2, 3)}, "`dilation_rate` must be"),
        ({"iterations": 0}, "`iterations` must be an int >= 1"),
        ({"u": np.ones((1, 3, 3, 2))}, "`u` must have shape"),
    ],
)
def test_conv_operator_norm_rejects_bad_arguments(kwargs, match):
    kernel = np.ones((3, 3, 2, 2), np.float32)
    with pytest.raises(ValueError, match=match):
        spectral.conv_operator_norm(kernel, (5, 5, 2), **kwargs)


@pytest.mark.parametrize(
    "input_shape", [(5, 5), (5, None, 2), (5, 5, 3), (0, 5, 2)]
)
def test_conv_operator_norm_rejects_bad_input_shape(input_shape):
    kernel = np.ones((3, 3, 2, 2), np.float32)
    with pytest.raises(ValueError, match="`input_shape` must be"):
        spectral.conv_operator_norm(kernel, input_shape)


def test_dense_operator_norm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`kernel` must be 2-D"):
        spectral.dense_operator_norm(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="Received: iterations=-1"):
        spectral.dense_operator_norm(np.ones((2, 2)), iterations=-1)
