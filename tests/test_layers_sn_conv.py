"""SNConv2D: the normalized *operator* obeys beta; state, override, contract."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNConv2D
from layers import kernel_override
from layers import spectral
from tests.layer_contract import conv_operator_matrix
from tests.layer_contract import run_layer_test

# (H, W, C_in, C_out, kernel, strides, padding, dilation)
NORMALIZED_CASES = [
    (7, 6, 2, 3, 3, 1, "same", 1),
    (7, 6, 3, 2, 5, 2, "same", 1),
    (7, 5, 1, 3, 4, 3, "valid", 1),
    (6, 7, 2, 2, 3, 1, "valid", 2),
    (6, 5, 2, 3, (3, 2), (2, 1), "same", 1),
]


def _top_sv(matrix):
    return np.linalg.svd(matrix, compute_uv=False)[0]


def _layer(case, beta, **kwargs):
    h, w, cin, cout, k, strides, padding, dilation = case
    layer = SNConv2D(
        cout,
        k,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        beta=beta,
        **kwargs,
    )
    layer.build((None, h, w, cin))
    return layer


def _converge_u(layer, x, calls=5):
    for _ in range(calls):
        layer(x, training=True)


@pytest.mark.parametrize("case", NORMALIZED_CASES, ids=str)
def test_normalized_operator_has_sigma_beta(case):
    h, w, cin, _, _, strides, padding, dilation = case
    layer = _layer(case, beta=1.0, power_iterations=100)
    raw = _top_sv(
        conv_operator_matrix(
            layer.kernel.numpy(), (h, w, cin), strides, padding, dilation
        )
    )
    beta = 0.5 * raw  # Force the cap to bind.
    layer.beta = beta
    _converge_u(layer, np.zeros((1, h, w, cin), np.float32))
    normalized = _top_sv(
        conv_operator_matrix(
            layer.normalized_kernel().numpy(),
            (h, w, cin),
            strides,
            padding,
            dilation,
        )
    )
    assert normalized <= beta * (1 + 1e-3)
    np.testing.assert_allclose(normalized, beta, rtol=1e-3)
    np.testing.assert_allclose(layer.spectral_norm(iterations=500), raw, 1e-4)


def test_no_rescaling_below_beta():
    case = NORMALIZED_CASES[0]
    layer = _layer(case, beta=1e3)
    np.testing.assert_array_equal(
        layer.normalized_kernel().numpy(), layer.kernel.numpy()
    )


def test_kernel_method_underestimates_the_operator_norm():
    # Miyato's reshape on a 3x3 stride-1 conv: its normalized kernel matrix
    # has norm beta, but the operator it applies exceeds beta (App. A.1).
    shape = (8, 8, 3)
    layer = SNConv2D(4, 3, padding="same", beta=1.0, method="kernel")
    layer.build((None, *shape))
    layer.power_iterations = 300
    _converge_u(layer, np.zeros((1, *shape), np.float32))
    kernel = layer.normalized_kernel().numpy()
    matrix_sigma = _top_sv(kernel.reshape(-1, 4).astype(np.float64))
    operator_sigma = _top_sv(conv_operator_matrix(kernel, shape, 1, "same", 1))
    np.testing.assert_allclose(matrix_sigma, 1.0, rtol=1e-3)
    assert operator_sigma > 1.2
    # spectral_norm() reports the true operator norm for both methods. The
    # top two singular values are within 0.3% here: 3000 steps are needed.
    raw_operator = _top_sv(
        conv_operator_matrix(layer.kernel.numpy(), shape, 1, "same", 1)
    )
    np.testing.assert_allclose(
        layer.spectral_norm(iterations=3000), raw_operator, rtol=1e-4
    )


@pytest.mark.parametrize(
    "init_kwargs, input_shape, output_shape, non_trainable",
    [
        (
            {"filters": 3, "kernel_size": 3, "beta": 1.0, "padding": "same"},
            (2, 7, 6, 2),
            (2, 7, 6, 3),
            1,
        ),
        (
            {"filters": 2, "kernel_size": 2, "strides": 2, "beta": 0.5},
            (2, 7, 6, 2),
            (2, 3, 3, 2),
            1,
        ),
        (
            {
                "filters": 2,
                "kernel_size": 3,
                "method": "kernel",
                "use_bias": False,
                "activation": "elu",
                "dilation_rate": 2,
            },
            (2, 8, 8, 1),
            (2, 4, 4, 2),
            1,
        ),
        (
            {
                "filters": 2,
                "kernel_size": 3,
                "beta": 1.0,
                "data_format": "channels_first",
                "padding": "same",
            },
            (2, 2, 5, 6),
            (2, 2, 5, 6),
            1,
        ),
    ],
)
def test_layer_contract(
    init_kwargs, input_shape, output_shape, non_trainable, rng
):
    x = rng.normal(size=input_shape).astype(np.float32)
    layer = run_layer_test(
        SNConv2D,
        init_kwargs=init_kwargs,
        input_data=x,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=1 + init_kwargs.get("use_bias", True),
        expected_num_non_trainable_weights=non_trainable,
    )
    assert layer.u.name == "u"
    if layer.method == "operator":
        h, w, c = (
            input_shape[1:]
            if layer.data_format == "channels_last"
            else (*input_shape[2:], input_shape[1])
        )
        assert tuple(layer.u.shape) == (1, h, w, c)
    else:
        assert tuple(layer.u.shape) == (1, layer.filters)


def test_channels_first_normalizes_the_same_operator(rng):
    x = rng.normal(size=(2, 5, 6, 2)).astype(np.float32)
    last = SNConv2D(3, 3, padding="same", beta=0.7)
    first = SNConv2D(
        3, 3, padding="same", beta=0.7, data_format="channels_first"
    )
    y_last = last(x)
    first.build((None, 2, 5, 6))
    first.set_weights(last.get_weights())
    y_first = first(np.transpose(x, (0, 3, 1, 2)))
    np.testing.assert_allclose(
        np.transpose(y_first, (0, 2, 3, 1)), y_last, atol=1e-5
    )


def test_forward_matches_explicit_rescaled_conv(rng):
    x = rng.normal(size=(2, 7, 6, 2)).astype(np.float32)
    layer = SNConv2D(3, 3, strides=2, padding="same", beta=0.3)
    layer.build(x.shape)
    layer.bias.assign(rng.normal(size=3).astype(np.float32))
    kernel = layer.kernel.numpy()
    sigma, _ = spectral.conv_power_iteration(
        kernel, layer.u.numpy(), strides=2, padding="same"
    )
    expected = (
        tf.nn.conv2d(x, kernel / max(1.0, float(sigma) / 0.3), 2, "SAME")
        + layer.bias.numpy()
    )
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_u_state_is_read_only_outside_training(rng):
    x = rng.normal(size=(4, 6, 6, 2)).astype(np.float32)
    y = np.zeros((4, 2), np.float32)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            SNConv2D(3, 3, padding="same", beta=1.0),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    layer = model.layers[0]
    model.compile(optimizer="sgd", loss="mse")
    u0 = layer.u.numpy().copy()
    layer(x, training=False)
    layer(x)
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    np.testing.assert_array_equal(layer.u.numpy(), u0)

    # One fit step: exactly one power step from (W_0, u_0).
    kernel0 = layer.kernel.numpy().copy()
    _, expected = spectral.conv_power_iteration(
        kernel0, u0, strides=1, padding="same"
    )
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert not np.array_equal(layer.kernel.numpy(), kernel0)
    np.testing.assert_allclose(layer.u.numpy(), expected, atol=1e-6)
    twice = spectral.conv_power_iteration(
        kernel0, expected, strides=1, padding="same"
    )[1]
    assert np.max(np.abs(twice - expected)) > 1e-4  # "Once" is testable.


def test_boolean_tensor_training_flag(rng):
    x = rng.normal(size=(1, 5, 5, 1)).astype(np.float32)
    layer = SNConv2D(2, 3, beta=1.0)
    layer.build(x.shape)
    u0 = layer.u.numpy().copy()
    layer(x, training=tf.constant(False))
    np.testing.assert_array_equal(layer.u.numpy(), u0)
    layer(x, training=tf.constant(True))
    assert not np.array_equal(layer.u.numpy(), u0)


def test_kernel_override_is_the_effective_kernel(rng):
    x = rng.normal(size=(2, 6, 5, 2)).astype(np.float32)
    layer = SNConv2D(3, 3, strides=2, padding="same", beta=0.1)
    layer.build(x.shape)
    layer.bias.assign(np.ones(3, np.float32))
    u0 = layer.u.numpy().copy()
    substitute = tf.constant(rng.normal(size=(3, 3, 2, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(substitute)
        with kernel_override({layer: substitute}):
            y = layer(x, training=True)
        loss = tf.reduce_sum(y)
    expected = tf.nn.conv2d(x, substitute, 2, "SAME") + 1.0
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.u.numpy(), u0)
    assert tape.gradient(loss, substitute) is not None
    # Outside the block the layer normalizes again.
    assert not np.allclose(layer(x), expected, atol=1e-3)


def test_gradient_through_sigma_matches_finite_differences(rng):
    x = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    layer = SNConv2D(2, 3, strides=2, padding="same", beta=0.2)
    layer.build(x.shape)
    w0 = layer.kernel.numpy().astype(np.float32)
    # The cap binds, so the loss depends on W through sigma_hat too.
    sigma, _ = spectral.conv_power_iteration(
        w0, layer.u.numpy(), strides=2, padding="same"
    )
    assert float(sigma) > 1.5 * layer.beta

    def loss(kernel):
        layer.kernel.assign(kernel)
        return float(tf.reduce_sum(tf.sin(layer(x, training=False))))

    layer.kernel.assign(w0)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(tf.sin(layer(x, training=False)))
    grad = tape.gradient(value, layer.kernel).numpy()
    h = 1e-2
    for _ in range(3):
        d = rng.normal(size=w0.shape).astype(np.float32)
        d /= np.linalg.norm(d)
        numeric = (loss(w0 + h * d) - loss(w0 - h * d)) / (2 * h)
        np.testing.assert_allclose(np.sum(grad * d), numeric, rtol=5e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": 0.0}, "Received: beta=0.0"),
        ({"beta": -1.0}, "`beta` must be"),
        ({"beta": float("nan")}, "Received: beta=nan"),
        ({"beta": "big"}, "`beta` must be"),
        ({"power_iterations": 0}, "Received: power_iterations=0"),
        ({"power_iterations": 1.5}, "`power_iterations` must be"),
        ({"method": "fft"}, "Received: method='fft'"),
        ({"padding": "causal"}, "Received: padding='causal'"),
        ({"padding": "full"}, "`padding` must be one of"),
        ({"groups": 2, "filters": 4}, "`groups` must be 1"),
    ],
)
def test_bad_arguments(kwargs, match):
    kwargs = {"filters": 2, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        SNConv2D(**kwargs)


def test_unknown_spatial_shape_is_an_error():
    layer = SNConv2D(2, 3, beta=1.0)
    with pytest.raises(ValueError, match="needs the spatial input shape"):
        layer.build((None, None, None, 3))
    with pytest.raises(ValueError, match="spatial input shape"):
        keras.Sequential([keras.Input((None, 8, 3)), SNConv2D(2, 3)])
    # The kernel method does not need it.
    SNConv2D(2, 3, method="kernel").build((None, None, None, 3))


def test_beta_inf_is_plain_conv_and_tracks_sigma(rng):
    x = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    layer = SNConv2D(2, 3, padding="same")
    y = layer(x, training=True)
    expected = tf.nn.conv2d(x, layer.kernel, 1, "SAME") + layer.bias
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    u0 = layer.u.numpy().copy()
    layer(x, training=True)
    assert not np.array_equal(layer.u.numpy(), u0)


@pytest.mark.parametrize("method", ["operator", "kernel"])
def test_beta_inf_normalized_kernel_skips_power_iteration(method, monkeypatch):
    layer = SNConv2D(2, 3, strides=2, padding="same", method=method)
    layer.build((None, 6, 5, 2))

    def no_power_iteration(*args, **kwargs):
        raise AssertionError("power iteration ran")

    monkeypatch.setattr(layer, "_power_iteration", no_power_iteration)
    with tf.GradientTape() as tape:
        kernel = layer.normalized_kernel()
        loss = tf.reduce_sum(kernel)
    np.testing.assert_array_equal(kernel, layer.kernel.numpy())
    np.testing.assert_array_equal(
        tape.gradient(loss, layer.kernel), np.ones(layer.kernel.shape)
    )
    layer.beta = 1.0  # Control: a finite beta does run it.
    with pytest.raises(AssertionError, match="power iteration ran"):
        layer.normalized_kernel()


def test_operator_u_initializer_is_truncated_normal_stddev_one():
    layer = SNConv2D(2, 3, beta=1.0)
    layer.build((None, 9, 8, 3))
    u = layer.u.numpy()
    assert u.shape == (1, 9, 8, 3) and not layer.u.trainable
    assert np.max(np.abs(u)) <= 2.0
    assert 0.8 < np.std(u) < 0.96  # 0.88 for a normal truncated at 2 sd.
