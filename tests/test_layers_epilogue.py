"""layers.epilogue: the native SN dense epilogue against NumPy and TF ops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNDense
from layers import epilogue
from layers import spectral

native = pytest.mark.skipif(
    not epilogue.available(), reason="no C++ compiler for the native op"
)

SHAPES = [(1, 1), (3, 13), (8, 16), (128, 512), (5, 33)]


def reference_forward(xw, scale, bias, activation):
    pre = xw.astype(np.float64) * scale + bias
    if activation == "elu":
        return np.where(pre < 0, np.expm1(np.minimum(pre, 0)), pre)
    if activation == "relu":
        return np.maximum(pre, 0)
    return pre


def reference_backward(gy, y, xw, scale, activation):
    gy, y = gy.astype(np.float64), y.astype(np.float64)
    if activation == "elu":
        g = np.where(y < 0, gy * (y + 1), gy)
    elif activation == "relu":
        g = np.where(y > 0, gy, 0.0)
    else:
        g = gy
    return g * scale, np.sum(g * xw), g.sum(axis=0)


def random_case(rng, rows, n):
    xw = (2 * rng.normal(size=(rows, n))).astype("float32")
    bias = rng.normal(size=n).astype("float32")
    return xw, np.float32(0.7), bias


@native
@pytest.mark.parametrize("activation", epilogue.ACTIVATIONS)
@pytest.mark.parametrize("rows,n", SHAPES)
def test_forward_matches_numpy(rng, activation, rows, n):
    xw, scale, bias = random_case(rng, rows, n)
    y = epilogue.sn_epilogue(xw, scale, bias, activation).numpy()
    expected = reference_forward(xw, scale, bias, activation)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@native
@pytest.mark.parametrize("activation", epilogue.ACTIVATIONS)
@pytest.mark.parametrize("rows,n", SHAPES)
def test_backward_matches_numpy(rng, activation, rows, n):
    xw, scale, bias = random_case(rng, rows, n)
    gy = rng.normal(size=xw.shape).astype("float32")
    y = epilogue.sn_epilogue(xw, scale, bias, activation)
    g_xw, g_scale, g_bias = epilogue.sn_epilogue_grad(
        gy, y, xw, scale, activation
    )
    exp_xw, exp_scale, exp_bias = reference_backward(
        gy, y.numpy(), xw, scale, activation
    )
    np.testing.assert_allclose(g_xw.numpy(), exp_xw, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g_bias.numpy(), exp_bias, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        float(g_scale), exp_scale, rtol=1e-5, atol=1e-5 * np.abs(gy).sum()
    )


@native
def test_elu_exp_accuracy_over_its_range():
    # Every float32 step of the reduction's range, including underflow to -1.
    pre = np.concatenate(
        [np.linspace(-100, 0, 200_001), np.linspace(-1e-6, 1e-6, 101)]
    ).astype("float32")[None]
    zeros = np.zeros(pre.shape[1], "float32")
    y = epilogue.sn_epilogue(pre, np.float32(1), zeros, "elu").numpy()
    expected = np.where(pre < 0, np.expm1(pre.astype(np.float64)), pre)
    # exp(pre) - 1 in float32: 1.4 ulp of exp plus the rounding of the
    # subtraction, as in TensorFlow's own ELU.
    np.testing.assert_allclose(y, expected, rtol=0, atol=1.2e-7)
    assert y.min() == -1.0


@native
@pytest.mark.parametrize("activation", epilogue.ACTIVATIONS)
def test_registered_gradient_matches_tf_ops(rng, activation):
    xw, scale, bias = (tf.constant(a) for a in random_case(rng, 6, 20))
    act = {"elu": tf.nn.elu, "relu": tf.nn.relu, "linear": tf.identity}
    weights = tf.constant(rng.normal(size=(6, 20)), tf.float32)
    grads = []
    for f in (
        lambda: epilogue.sn_epilogue(xw, scale, bias, activation),
        lambda: act[activation](tf.nn.bias_add(xw * scale, bias)),
    ):
        with tf.GradientTape() as tape:
            tape.watch([xw, scale, bias])
            loss = tf.reduce_sum(weights * f())
        grads.append(tape.gradient(loss, [xw, scale, bias]))
    for got, want in zip(*grads, strict=True):
        np.testing.assert_allclose(
            got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5
        )


@native
def test_bad_activation_is_a_value_error():
    with pytest.raises(ValueError, match="activation.*'gelu'"):
        epilogue.sn_epilogue(
            np.ones((2, 3), "float32"), 1.0, np.ones(3, "float32"), "gelu"
        )


@native
def test_bad_bias_shape_is_rejected():
    with pytest.raises(tf.errors.InvalidArgumentError, match="bias"):
        epilogue.sn_epilogue(
            np.ones((2, 3), "float32"),
            np.float32(1),
            np.ones(4, "float32"),
            "elu",
        )


def test_activation_names():
    assert epilogue.activation_name(keras.activations.get("elu")) == "elu"
    assert epilogue.activation_name(keras.activations.get("relu")) == "relu"
    assert epilogue.activation_name(keras.activations.get(None)) == "linear"
    assert epilogue.activation_name(keras.activations.get("tanh")) is None


def test_not_usable_for_float16_under_xla_or_when_disabled():
    assert not epilogue.usable(tf.float16)
    with epilogue.disabled():
        assert not epilogue.usable(tf.float32)
    seen = []

    @tf.function(jit_compile=True)
    def f(x):
        seen.append(epilogue.usable(tf.float32))
        return x + 1

    f(tf.ones(2))
    assert seen == [False]


def _model_grads(model, x, y):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = loss_fn(y, out)
        return out, tape.gradient(loss, model.trainable_variables)

    ops = {
        op.type for op in step.get_concrete_function().graph.get_operations()
    }
    out, grads = step()
    return out.numpy(), [g.numpy() for g in grads], ops


def _sn_model(activation, use_bias, input_shape):
    keras.utils.set_random_seed(3)
    layers = [keras.Input(input_shape)]
    layers += [SNDense(24, activation=activation, use_bias=use_bias, beta=0.5)]
    layers += [keras.layers.Flatten(), SNDense(5, beta=0.5)]
    model = keras.Sequential(layers)
    for v in model.trainable_variables:  # large enough for the cap to bind
        v.assign(v * 4.0 + 0.1)
    return model


@native
@pytest.mark.parametrize("activation", ["elu", "relu", None])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("input_shape", [(12,), (3, 12)])
def test_sn_dense_native_training_step_equals_tf_ops(
    rng, activation, use_bias, input_shape
):
    x = tf.constant(rng.normal(size=(16, *input_shape)), tf.float32)
    y = tf.constant(rng.integers(0, 5, size=16))
    out, grads, ops = _model_grads(
        _sn_model(activation, use_bias, input_shape), x, y
    )
    assert "NsrSnEpilogue" in ops and "NsrSnEpilogueGrad" in ops
    with epilogue.disabled():
        out_tf, grads_tf, ops_tf = _model_grads(
            _sn_model(activation, use_bias, input_shape), x, y
        )
    assert not any(op.startswith("Nsr") for op in ops_tf)
    np.testing.assert_allclose(out, out_tf, rtol=1e-5, atol=1e-6)
    for g, g_tf in zip(grads, grads_tf, strict=True):
        np.testing.assert_allclose(
            g, g_tf, rtol=1e-5, atol=1e-6 * np.abs(g_tf).max()
        )


@native
def test_inference_and_export_hold_no_native_op(tmp_path, rng):
    model = _sn_model("elu", True, (12,))
    x = rng.normal(size=(4, 12)).astype("float32")
    infer = tf.function(lambda t: model(t, training=False))
    graph = infer.get_concrete_function(tf.TensorSpec([None, 12])).graph
    assert not any(op.type.startswith("Nsr") for op in graph.get_operations())
    model.export(str(tmp_path / "saved"), verbose=False)
    pb = (tmp_path / "saved" / "saved_model.pb").read_bytes()
    assert b"NsrSnEpilogue" not in pb
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(
        reloaded.serve(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6
    )


def test_falls_back_when_the_compiler_fails(monkeypatch, tmp_path, rng):
    monkeypatch.setenv("CXX", "false")
    monkeypatch.setenv("NSR_TF_CACHE", str(tmp_path))
    epilogue._load_library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="native SN epilogue op"):
            assert not epilogue.available()
        x = tf.constant(rng.normal(size=(16, 12)), tf.float32)
        y = tf.constant(rng.integers(0, 5, size=16))
        _, grads, ops = _model_grads(_sn_model("elu", True, (12,)), x, y)
        assert not any(op.startswith("Nsr") for op in ops)
        assert all(np.isfinite(g).all() for g in grads)
    finally:
        monkeypatch.undo()
        epilogue._load_library.cache_clear()


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("NSR_TF_NATIVE", "0")
    epilogue._load_library.cache_clear()
    try:
        assert not epilogue.available()
        with pytest.raises(RuntimeError, match="not available"):
            epilogue.sn_epilogue(
                np.ones((1, 2), "float32"), 1.0, np.ones(2, "float32"), "elu"
            )
    finally:
        monkeypatch.undo()
        epilogue._load_library.cache_clear()


@native
def test_sn_dense_matmul_gradient_matches_finite_differences(rng):
    # The fused path's kernel gradient (through sigma_hat, v and u') by
    # central differences in float64 of the float32 function.
    x = tf.constant(rng.normal(size=(6, 5)), tf.float32)
    kernel = tf.constant(2 * rng.normal(size=(5, 4)), tf.float32)
    bias = tf.constant(rng.normal(size=4), tf.float32)
    u = tf.constant(rng.normal(size=(1, 4)), tf.float32)
    weights = tf.constant(rng.normal(size=(6, 4)), tf.float32)

    def loss(k):
        z, _ = spectral.sn_dense_matmul(
            x, k, u, 0.8, bias=bias, activation="elu"
        )
        return tf.reduce_sum(weights * z)

    with tf.GradientTape() as tape:
        tape.watch(kernel)
        value = loss(kernel)
    grad = tape.gradient(value, kernel).numpy()
    numeric = np.zeros_like(grad)
    h = 1e-2
    for idx in np.ndindex(*grad.shape):
        step = np.zeros(grad.shape, "float32")
        step[idx] = h
        numeric[idx] = (
            float(loss(kernel + step)) - float(loss(kernel - step))
        ) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=2e-2, atol=2e-3)
