"""Behaviour every attack shares: y=None, one compiled loop, no data clip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nsr_tf import attacks
from nsr_tf.attacks import _steps
from tests._attack_models import np_l2_dir
from tests._attack_models import relu_mlp


class _CallCounter(keras.layers.Layer):
    """Identity that counts its Python calls (one per trace, or per eager
    call: a Python loop over the steps would call it once a step)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def call(self, x):
        self.calls += 1
        return x


def _attack(name, model, x, steps, **kw):
    """Runs attack ``name``; returns the adversarial inputs."""
    if name == "fgm":
        return attacks.fgm(model, x, 0.3, norm=2, **kw)
    if name == "pgd":
        return attacks.pgd(
            model, x, 0.3, norm=np.inf, steps=steps, step_size=0.1, **kw
        )
    if name == "pgd_l2":
        return attacks.pgd(
            model, x, 0.5, norm=2, steps=steps, step_size=0.2, **kw
        )
    if name == "wrm":
        return attacks.wrm(model, x, 0.5, steps=steps, **kw)
    fn = attacks.joint_pgd if name == "joint" else attacks.universal_joint_pgd
    if name == "universal":
        kw["batch_size"] = 3
    y = kw.pop("y", None)
    return fn(
        model, x, y, eps_x=0.3, eps_w=0.02, steps=steps, step_size_x=0.1,
        step_size_w=0.005, **kw,
    )[0]  # fmt: skip


ATTACKS = ["fgm", "pgd", "pgd_l2", "wrm", "joint", "universal"]


@pytest.fixture(scope="module")
def mlp():
    """One model for the module, so compiled attacks are reused."""
    return relu_mlp(np.random.default_rng(42), dtype="float32")[0]


@pytest.mark.parametrize("name", ATTACKS)
def test_y_none_attacks_the_clean_predictions(rng, mlp, name):
    model = mlp
    x = rng.uniform(0, 1, (12, 6)).astype(np.float32)
    pred = np.argmax(model(x).numpy(), axis=1)
    default = _attack(name, model, x, 4).numpy()
    given = _attack(name, model, x, 4, y=pred).numpy()
    other = _attack(name, model, x, 4, y=(pred + 1) % 3).numpy()
    np.testing.assert_array_equal(default, given)
    assert np.abs(default - other).max() > 1e-3


@pytest.mark.parametrize("name", [n for n in ATTACKS if n != "fgm"])
def test_whole_loop_is_one_compiled_function(rng, name):
    # A second call with another number of steps neither retraces nor runs
    # the model eagerly: the loop and its step count live in one graph.
    counter = _CallCounter()
    inner, _ = relu_mlp(rng, dtype="float32")
    model = keras.Sequential([keras.Input((6,)), counter, *inner.layers])
    x = rng.normal(size=(5, 6)).astype(np.float32)
    _attack(name, model, x, 3)
    traced = counter.calls
    assert 0 < traced <= 6
    _attack(name, model, x, 11)
    assert counter.calls == traced


@pytest.mark.parametrize("name", ATTACKS)
def test_no_clipping_unless_bounds_are_given(rng, mlp, name):
    model = mlp
    x = rng.uniform(0, 1, (12, 6)).astype(np.float32)
    free = _attack(name, model, x, 4).numpy()
    assert free.min() < 0 or free.max() > 1
    lo = _attack(name, model, x, 4, clip_min=0.0).numpy()
    assert lo.min() >= 0
    hi = _attack(name, model, x, 4, clip_max=1.0).numpy()
    assert hi.max() <= 1


def test_l2_direction_and_projection_are_exact_at_float32_extremes():
    # Squares of 1e-25 underflow to 0 and squares of 1e20 overflow in
    # float32; the norms are taken in float64, so both stay exact.
    g = np.array(
        [[3e-25, -4e-25], [3e20, 4e20], [0.0, 0.0], [1.0, 2.0]], np.float32
    )
    d = _steps.l2_direction(tf.constant(g)).numpy()
    np.testing.assert_allclose(d, np_l2_dir(g.astype(np.float64)), rtol=1e-6)
    half = _steps.l2_direction(tf.constant(g[2:], tf.float16)).numpy()
    np.testing.assert_allclose(half, [[0, 0], [0.4472, 0.8944]], atol=1e-3)
    x0 = np.zeros_like(g)
    p = _steps.project(tf.constant(g), x0, tf.constant(0.5), 2.0).numpy()
    np.testing.assert_allclose(
        np.linalg.norm(p.astype(np.float64), axis=1), [5e-25, 0.5, 0, 0.5],
        rtol=1e-6,
    )  # fmt: skip
    np.testing.assert_array_equal(p[0], g[0])
    np.testing.assert_allclose(p[1], [0.3, 0.4], rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("one_hot", [False, True])
def test_margin_loss_matches_numpy(seed, one_hot):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(7, 5)).astype("float32") * 3
    y = rng.integers(0, 5, size=7)
    others = np.where(np.eye(5, dtype=bool)[y], -np.inf, logits)
    want = others.max(axis=1) - logits[np.arange(7), y]
    labels = np.eye(5, dtype="float32")[y] if one_hot else y
    got = attacks.margin_loss(tf.constant(labels), tf.constant(logits))
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-6)


def test_margin_gradient_survives_a_saturated_softmax():
    """Where float32 softmax saturates, the cross-entropy input gradient is
    exactly zero and the margin's is the closed form w_other - w_true."""
    w = np.array([[200.0, 0.0, -1.0], [0.0, 3.0, 1.0]], dtype="float32")
    model = lambda x: x @ w  # noqa: E731
    x = tf.constant([[1.0, 0.0]])
    y = tf.constant([0])
    ce = _steps.input_gradient(model, x, y, attacks.softmax_cross_entropy)
    margin = _steps.input_gradient(model, x, y, attacks.margin_loss)
    np.testing.assert_array_equal(ce.numpy(), np.zeros((1, 2)))
    np.testing.assert_allclose(margin.numpy(), [w[:, 1] - w[:, 0]], atol=0)
