"""Tests for nsr_tf.perturb: targets, substituted forward passes, restore."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNDense
from nsr_tf import perturb
from tests._attack_models import np_forward_backward
from tests._attack_models import relu_mlp


def _np_mlp(x, kernels, biases):
    h = x
    for i, (w, b) in enumerate(zip(kernels, biases, strict=True)):
        h = h @ w + b
        if i < len(kernels) - 1:
            h = np.maximum(h, 0)
    return h


def test_default_targets_are_kernels_recursively(rng):
    inner, _ = relu_mlp(rng, dtype="float32")
    outer = keras.Sequential([keras.Input((6,)), inner, keras.layers.Dense(2)])
    names = [t.name for t in perturb.weight_targets(outer)]
    assert len(names) == 3 and all(n.endswith("kernel") for n in names)
    with_bias = perturb.weight_targets(outer, include_bias=True)
    assert len(with_bias) == 6
    assert all(t.layer is None for t in with_bias)


def test_perturbed_call_matches_numpy_and_does_not_mutate(rng):
    model, params = relu_mlp(rng, dtype="float64")
    x = rng.normal(size=(5, 6))
    deltas = [rng.normal(0, 0.1, p[0].shape) for p in params]
    snap = [v.numpy().copy() for v in model.variables]
    got = perturb.perturbed_call(model, tf.constant(x), deltas).numpy()
    kernels = [p[0] + d for p, d in zip(params, deltas, strict=True)]
    expected = _np_mlp(x, kernels, [p[1] for p in params])
    np.testing.assert_allclose(got, expected, atol=1e-12)
    zero = perturb.perturbed_call(model, x, [0 * d for d in deltas]).numpy()
    np.testing.assert_allclose(zero, model(x).numpy(), atol=1e-12)
    for v, s in zip(model.variables, snap, strict=True):
        np.testing.assert_array_equal(v.numpy(), s)


def test_perturbed_call_gradient_is_taken_at_the_perturbed_weights(rng):
    # d CE(W + delta) / dW: the same for the clean kernels and the deltas,
    # and equal to the NumPy gradient at the perturbed kernels.
    model, params = relu_mlp(rng, dtype="float64")
    x = rng.normal(size=(5, 6))
    y = rng.integers(0, 3, 5)
    deltas = [tf.constant(rng.normal(0, 0.1, p[0].shape)) for p in params]
    kernels = [layer.kernel for layer in model.layers]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(deltas)
        logits = perturb.perturbed_call(model, x, deltas)
        loss = tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        )
    _, expected, _ = np_forward_backward(
        x, y, [p[0] + d.numpy() for p, d in zip(params, deltas, strict=True)],
        [p[1] for p in params],
    )  # fmt: skip
    for got in (tape.gradient(loss, kernels), tape.gradient(loss, deltas)):
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g.numpy(), e, atol=1e-10)
    # The attacks' centres carry no gradient.
    with tf.GradientTape() as tape:
        base = perturb.base_values(perturb.weight_targets(model))
        total = tf.add_n([tf.reduce_sum(b) for b in base])
    assert all(g is None for g in tape.gradient(total, kernels))


def test_sn_targets_use_the_effective_kernel_and_keep_u(rng):
    model = keras.Sequential(
        [keras.Input((6,)), SNDense(8, beta=0.3, activation="relu"),
         SNDense(3, beta=0.3)]
    )  # fmt: skip
    x = rng.normal(size=(4, 6)).astype(np.float32)
    model(x)
    targets = perturb.weight_targets(model)
    assert [t.layer for t in targets] == model.layers
    base = perturb.base_values(targets)
    for b, layer in zip(base, model.layers, strict=True):
        np.testing.assert_allclose(b.numpy(), layer.normalized_kernel().numpy())
    u_before = [layer.u.numpy().copy() for layer in model.layers]
    deltas = [rng.normal(0, 0.05, b.shape).astype(np.float32) for b in base]
    got = perturb.perturbed_call(model, x, deltas, training=True).numpy()
    kernels = [b.numpy() + d for b, d in zip(base, deltas, strict=True)]
    biases = [layer.bias.numpy() for layer in model.layers]
    np.testing.assert_allclose(got, _np_mlp(x, kernels, biases), atol=1e-5)
    for layer, u in zip(model.layers, u_before, strict=True):
        np.testing.assert_array_equal(layer.u.numpy(), u)
    # An explicit SN kernel selects that layer's effective kernel.
    picked = perturb.weight_targets(model, weights=[model.layers[1].kernel])
    assert picked[0].layer is model.layers[1]


def test_perturbed_variables_restores_exactly_even_on_error(rng):
    model, params = relu_mlp(rng, dtype="float32")
    targets = perturb.weight_targets(model, include_bias=True)
    snap = [v.numpy().copy() for v in model.variables]
    deltas = [np.full(t.shape, 0.1, np.float32) for t in targets]
    with pytest.raises(RuntimeError, match="boom"):
        with perturb.perturbed_variables(targets, deltas):
            np.testing.assert_allclose(
                model.layers[0].kernel.numpy(), snap[0] + 0.1, atol=1e-7
            )
            raise RuntimeError("boom")
    for v, s in zip(model.variables, snap, strict=True):
        np.testing.assert_array_equal(v.numpy(), s)


def test_saved_model_targets(rng, tmp_path):
    model, _ = relu_mlp(rng, dtype="float32")
    model.export(str(tmp_path / "sm"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    assert perturb.is_saved_model(loaded) and not perturb.is_saved_model(model)
    targets = perturb.weight_targets(loaded)
    assert [t.shape for t in targets] == [(6, 8), (8, 3)]
    assert len(perturb.weight_targets(loaded, include_bias=True)) == 4


def test_bad_input(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    other, _ = relu_mlp(rng, dtype="float32")
    with pytest.raises(ValueError, match=r"weights\[0\]="):
        perturb.weight_targets(model, weights=[other.layers[0].kernel])
    with pytest.raises(ValueError, match="`model` must be a Keras model"):
        perturb.weight_targets(object())
    with pytest.raises(ValueError, match="`values` must have one entry"):
        perturb.call_with_weights(
            model, np.zeros((1, 6)), perturb.weight_targets(model), []
        )
    sn = keras.Sequential([keras.Input((2,)), SNDense(2)])
    with pytest.raises(ValueError, match="plain variables"):
        with perturb.perturbed_variables(perturb.weight_targets(sn)):
            pass
