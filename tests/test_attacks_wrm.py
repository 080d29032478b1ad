"""Tests for nsr_tf.attacks.wrm: closed form, NumPy reference, bad input."""

import numpy as np
import pytest
import tensorflow as tf

from nsr_tf.attacks import wrm
from tests._attack_models import linear_model
from tests._attack_models import np_forward_backward
from tests._attack_models import relu_mlp

W = np.array([[1.0, -1.0], [-2.0, 0.5], [0.5, 3.0]])


def _margin_loss(labels, logits):
    del labels
    return logits[:, 1] - logits[:, 0]


@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("steps", [1, 15])
def test_linear_loss_reaches_the_exact_maximizer(gamma, steps):
    # loss = c . x is linear, so argmax_d c.d - gamma |d|^2 = c / (2 gamma),
    # which the initial step already reaches and later steps keep.
    model = linear_model(W, [0.0, 0.0], dtype="float64")
    x = np.array([[0.2, -0.1, 0.3], [1.0, 0.5, -0.4]])
    got = wrm(model, tf.constant(x), gamma, steps=steps, loss_fn=_margin_loss)
    c = W[:, 1] - W[:, 0]
    np.testing.assert_allclose(got.numpy(), x + c / (2 * gamma), atol=1e-12)


def test_matches_numpy_reference_on_relu_mlp(rng):
    model, params = relu_mlp(rng, dtype="float64")
    kernels, biases = [p[0] for p in params], [p[1] for p in params]
    x = rng.normal(size=(9, 6))
    gamma, steps = 1.5, 15
    y = np.argmax(
        np_forward_backward(x, np.zeros(9, int), kernels, biases)[2], 1
    )
    e = 1 / (2 * gamma)
    xa = x + e * np_forward_backward(x, y, kernels, biases)[0]
    for t in range(steps):
        g = np_forward_backward(xa, y, kernels, biases)[0]
        xa = xa + (t + 2) ** -0.5 * (e * g - (xa - x))
    got = wrm(model, tf.constant(x), gamma, steps=steps)  # y=None: predicted
    np.testing.assert_allclose(got.numpy(), xa, atol=1e-5, rtol=0)
    assert np.abs(xa - x).max() > 0.05


def test_clip_bounds_hold(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    x = rng.uniform(0, 1, (8, 6)).astype(np.float32)
    got = wrm(model, x, 0.05, clip_min=0.0, clip_max=1.0).numpy()
    assert got.min() >= 0 and got.max() <= 1
    assert np.abs(got - x).max() > 0.1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gamma=0.0), "`gamma` must be > 0. Received: gamma=0.0"),
        (dict(gamma=-1.0), "`gamma` must be > 0"),
        (dict(steps=0), "`steps` must be an integer >= 1"),
        (dict(y=[0]), "same number of examples"),
    ],
)
def test_bad_input(kwargs, match):
    model = linear_model(W, [0.0, 0.0])
    args = dict(gamma=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        wrm(model, np.zeros((2, 3), np.float32), **args)
