"""SNDense: the normalized kernel obeys beta; state, override, contract."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNDense
from layers import kernel_override
from layers import spectral
from tests.layer_contract import run_layer_test


def _top_sv(matrix):
    return np.linalg.svd(np.asarray(matrix, np.float64), compute_uv=False)[0]


@pytest.mark.parametrize("shape", [(6, 4), (3, 9), (10, 10)])
def test_normalized_kernel_has_sigma_beta(shape):
    layer = SNDense(shape[1], power_iterations=100)
    layer.build((None, shape[0]))
    raw = _top_sv(layer.kernel.numpy())
    layer.beta = 0.5 * raw
    for _ in range(5):
        layer(np.zeros((1, shape[0]), np.float32), training=True)
    normalized = _top_sv(layer.normalized_kernel())
    assert normalized <= layer.beta * (1 + 1e-3)
    np.testing.assert_allclose(normalized, layer.beta, rtol=1e-3)
    np.testing.assert_allclose(layer.spectral_norm(), raw, rtol=1e-4)


def test_ones_kernel_closed_form():
    # An all-ones 2x2 kernel has sigma = 2: beta=1 halves the output.
    layer = SNDense(2, beta=1.0, use_bias=False, kernel_initializer="ones")
    y = layer(np.ones((1, 2), np.float32))
    np.testing.assert_allclose(y, [[1.0, 1.0]], rtol=1e-6)


def test_forward_matches_numpy(rng):
    x = rng.normal(size=(3, 5)).astype(np.float32)
    layer = SNDense(4, beta=0.4, activation="elu")
    layer.build(x.shape)
    layer.bias.assign(rng.normal(size=4).astype(np.float32))
    w = layer.kernel.numpy().astype(np.float64)
    u = layer.u.numpy().astype(np.float64)
    v = u @ w.T
    v /= np.linalg.norm(v) + 1e-12
    wv = v @ w
    u_new = wv / (np.linalg.norm(wv) + 1e-12)
    sigma = float(np.sum(wv * u_new))
    z = x @ (w / max(1.0, sigma / 0.4)) + layer.bias.numpy()
    expected = np.where(z > 0, z, np.expm1(z))
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "init_kwargs, input_shape, output_shape",
    [
        ({"units": 4, "beta": 1.0}, (3, 5), (3, 4)),
        ({"units": 2, "use_bias": False, "activation": "elu"}, (3, 6), (3, 2)),
        (
            {"units": 3, "beta": 0.5, "power_iterations": 2},
            (2, 4, 5),
            (2, 4, 3),
        ),
    ],
)
def test_layer_contract(init_kwargs, input_shape, output_shape, rng):
    x = rng.normal(size=input_shape).astype(np.float32)
    layer = run_layer_test(
        SNDense,
        init_kwargs=init_kwargs,
        input_data=x,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=1 + init_kwargs.get("use_bias", True),
        expected_num_non_trainable_weights=1,
    )
    assert layer.u.name == "u"
    assert tuple(layer.u.shape) == (1, init_kwargs["units"])


def test_u_state_is_read_only_outside_training(rng):
    x = rng.normal(size=(4, 5)).astype(np.float32)
    y = np.zeros((4, 3), np.float32)
    model = keras.Sequential([keras.Input((5,)), SNDense(3, beta=1.0)])
    model.compile(optimizer="sgd", loss="mse")
    layer = model.layers[0]
    u0 = layer.u.numpy().copy()
    layer(x, training=False)
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    np.testing.assert_array_equal(layer.u.numpy(), u0)

    kernel0 = layer.kernel.numpy().copy()
    _, expected = spectral.dense_power_iteration(kernel0, u0)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    np.testing.assert_allclose(layer.u.numpy(), expected, atol=1e-6)
    twice = spectral.dense_power_iteration(kernel0, expected)[1]
    assert np.max(np.abs(twice - expected)) > 1e-4


def test_kernel_override_is_the_effective_kernel(rng):
    x = rng.normal(size=(2, 5)).astype(np.float32)
    layer = SNDense(3, beta=0.1, use_bias=False)
    layer.build(x.shape)
    u0 = layer.u.numpy().copy()
    substitute = tf.constant(rng.normal(size=(5, 3)), tf.float32)

    @tf.function
    def forward():
        with kernel_override({layer: substitute}):
            return layer(x, training=True)

    np.testing.assert_allclose(forward(), x @ substitute.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(layer.u.numpy(), u0)


def test_gradient_through_sigma_matches_finite_differences(rng):
    x = rng.normal(size=(3, 5)).astype(np.float32)
    layer = SNDense(4, beta=0.3)
    layer.build(x.shape)
    w0 = layer.kernel.numpy()

    def loss(kernel):
        layer.kernel.assign(kernel)
        return tf.reduce_sum(tf.sin(layer(x, training=False)))

    with tf.GradientTape() as tape:
        value = loss(w0)
    grad = tape.gradient(value, layer.kernel).numpy()
    with tf.GradientTape() as tape:
        # The same forward pass with sigma_hat frozen: a different gradient,
        # so the check below can tell whether gradients flow through sigma.
        sigma, _ = spectral.dense_power_iteration(layer.kernel, layer.u)
        kernel = layer.kernel / tf.maximum(1.0, tf.stop_gradient(sigma) / 0.3)
        frozen = tf.reduce_sum(tf.sin(x @ kernel + layer.bias))
    grad_frozen = tape.gradient(frozen, layer.kernel).numpy()
    assert np.max(np.abs(grad - grad_frozen)) > 1e-2
    h = 1e-2
    for _ in range(3):
        d = rng.normal(size=w0.shape).astype(np.float32)
        d /= np.linalg.norm(d)
        numeric = (float(loss(w0 + h * d)) - float(loss(w0 - h * d))) / (2 * h)
        np.testing.assert_allclose(np.sum(grad * d), numeric, rtol=5e-3)


def test_beta_inf_is_plain_dense_and_tracks_sigma(rng):
    x = rng.normal(size=(2, 5)).astype(np.float32)
    layer = SNDense(3)
    y = layer(x, training=True)
    np.testing.assert_allclose(y, x @ layer.kernel.numpy(), atol=1e-6)
    u0 = layer.u.numpy().copy()
    layer(x, training=True)
    assert not np.array_equal(layer.u.numpy(), u0)
    assert layer.get_config()["beta"] == float("inf")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": 0}, "Received: beta=0"),
        ({"beta": -2.0}, "`beta` must be"),
        ({"beta": float("nan")}, "Received: beta=nan"),
        ({"beta": None}, "`beta` must be"),
        ({"power_iterations": 0}, "Received: power_iterations=0"),
        ({"power_iterations": True}, "`power_iterations` must be"),
        ({"lora_rank": 2}, "does not support LoRA"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SNDense(3, **kwargs)


def test_spectral_norm_before_build_is_an_error():
    with pytest.raises(ValueError, match="after the layer is built"):
        SNDense(3).spectral_norm()


def _no_power_iteration(*args, **kwargs):
    raise AssertionError("power iteration ran")


def test_beta_inf_normalized_kernel_skips_power_iteration(monkeypatch):
    # max(1, sigma / inf) == 1: W_SN is W itself, no power iteration needed.
    layer = SNDense(3)
    layer.build((None, 5))
    monkeypatch.setattr(layer, "_power_iteration", _no_power_iteration)
    with tf.GradientTape() as tape:
        kernel = layer.normalized_kernel()
        loss = tf.reduce_sum(kernel * kernel)
    np.testing.assert_array_equal(kernel, layer.kernel.numpy())
    np.testing.assert_allclose(
        tape.gradient(loss, layer.kernel), 2 * layer.kernel.numpy()
    )
    layer.beta = 1.0  # Control: a finite beta does run it.
    with pytest.raises(AssertionError, match="power iteration ran"):
        layer.normalized_kernel()


def test_u_initializer_is_truncated_normal_stddev_one():
    # Spec §3: TruncatedNormal(stddev=1), not the Keras default 0.05.
    layer = SNDense(400)
    layer.build((None, 2))
    u = layer.u.numpy()
    assert not layer.u.trainable and u.dtype == np.float32
    assert np.max(np.abs(u)) <= 2.0
    assert 0.8 < np.std(u) < 0.96  # 0.88 for a normal truncated at 2 sd.


def test_numpy_int_power_iterations():
    layer = SNDense(3, power_iterations=np.int64(2))
    assert type(layer.power_iterations) is int
    assert layer.get_config()["power_iterations"] == 2
