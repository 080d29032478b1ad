"""Tests for nsr_tf.attacks.pgd and fgm: closed forms, invariants, NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from nsr_tf.attacks import fgm
from nsr_tf.attacks import pgd
from tests._attack_models import linear_model
from tests._attack_models import np_forward_backward
from tests._attack_models import np_l2_dir
from tests._attack_models import relu_mlp

W = np.array([[1.0, -1.0], [-2.0, 0.5], [0.5, 3.0]])
B = np.array([0.1, -0.2])


def _flow_direction(y):
    """For a 2-class linear model the CE gradient is along w_other - w_y."""
    d = W[:, 1 - y] - W[:, y]
    return d.T


@pytest.mark.parametrize("attack", ["fgm", "pgd"])
@pytest.mark.parametrize("norm", [np.inf, 2, "inf"])
def test_linear_model_exact_point(attack, norm):
    model = linear_model(W, B)
    x = np.array([[0.2, -0.1, 0.3], [1.0, 0.5, -0.4]], np.float32)
    y = np.array([0, 1])
    eps = 0.3
    if attack == "fgm":
        x_adv = fgm(model, x, eps, norm=norm, y=y)
    else:
        x_adv = pgd(model, x, eps, norm=norm, steps=7, step_size=0.1, y=y)
    d = _flow_direction(y)
    if norm == 2:
        expected = x + eps * d / np.linalg.norm(d, axis=1, keepdims=True)
    else:
        expected = x + eps * np.sign(d)
    np.testing.assert_allclose(x_adv.numpy(), expected, atol=1e-6)


def test_linear_model_clip_bounds_exact():
    model = linear_model(W, B)
    x = np.array([[0.2, 0.9, 0.5]], np.float32)
    x_adv = pgd(
        model, x, 0.3, norm=np.inf, steps=5, step_size=0.1, y=[0],
        clip_min=0.0, clip_max=1.0,
    )  # fmt: skip
    expected = np.clip(x + 0.3 * np.sign(_flow_direction(np.array([0]))), 0, 1)
    np.testing.assert_allclose(x_adv.numpy(), expected, atol=1e-6)


def test_predicted_labels_by_default(rng):
    model = linear_model(W, B)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    y_pred = np.argmax(model(x).numpy(), axis=1)
    a = pgd(model, x, 0.2, norm=2, steps=3, step_size=0.1)
    b = pgd(model, x, 0.2, norm=2, steps=3, step_size=0.1, y=y_pred)
    c = pgd(model, x, 0.2, norm=2, steps=3, step_size=0.1, y=1 - y_pred)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert np.abs(a.numpy() - c.numpy()).max() > 0.1


@pytest.mark.parametrize("norm", [np.inf, 2])
@pytest.mark.parametrize("attack", ["fgm", "pgd", "pgd_rand"])
def test_eps_zero_is_identity(rng, norm, attack):
    model, _ = relu_mlp(rng, dtype="float32")
    x = rng.normal(size=(4, 6)).astype(np.float32)
    if attack == "fgm":
        x_adv = fgm(model, x, 0.0, norm=norm)
    else:
        x_adv = pgd(
            model, x, 0.0, norm=norm, steps=3, step_size=0.1,
            rand_init=attack == "pgd_rand", seed=1,
        )  # fmt: skip
    np.testing.assert_array_equal(x_adv.numpy(), x)


@pytest.mark.parametrize("norm", [np.inf, 2])
@pytest.mark.parametrize("rand_init", [False, True])
def test_ball_and_clip_bounds_hold(rng, norm, rand_init):
    model, _ = relu_mlp(rng, dtype="float32")
    x = rng.uniform(0, 1, size=(16, 6)).astype(np.float32)
    eps = 0.25
    x_adv = pgd(
        model, x, eps, norm=norm, steps=10, step_size=0.1, clip_min=0.0,
        clip_max=1.0, rand_init=rand_init, seed=3,
    ).numpy()  # fmt: skip
    delta = x_adv - x
    if norm == 2:
        assert np.linalg.norm(delta, axis=1).max() <= eps * (1 + 1e-5)
    else:
        assert np.abs(delta).max() <= eps + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.abs(delta).max() > 0.05  # the attack did move


def _np_pgd(x, y, kernels, biases, eps, step, steps, norm):
    x0, xa = x.copy(), x.copy()
    for _ in range(steps):
        g, _, _ = np_forward_backward(xa, y, kernels, biases)
        xa = xa + step * (np.sign(g) if norm == np.inf else np_l2_dir(g))
        if norm == np.inf:
            xa = np.clip(xa, x0 - eps, x0 + eps)
        else:
            n = np.linalg.norm(xa - x0, axis=1, keepdims=True)
            xa = x0 + (xa - x0) * np.where(
                n > eps, eps / np.maximum(n, 1e-300), 1
            )
    return xa


@pytest.mark.parametrize("norm", [np.inf, 2])
def test_matches_numpy_reference_on_relu_mlp(rng, norm):
    model, params = relu_mlp(rng, sizes=(6, 8, 8, 3), dtype="float64")
    x = rng.normal(size=(10, 6))
    y = rng.integers(0, 3, size=10)
    kernels = [p[0] for p in params]
    biases = [p[1] for p in params]
    expected = _np_pgd(x, y, kernels, biases, 0.5, 0.07, 12, norm)
    got = pgd(
        model, tf.constant(x), 0.5, norm=norm, steps=12, step_size=0.07, y=y
    )
    assert got.dtype == tf.float64
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5, rtol=0)
    assert np.abs(expected - x).max() > 0.1


def test_fgm_matches_numpy_reference(rng):
    model, params = relu_mlp(rng, dtype="float64")
    x = rng.normal(size=(7, 6))
    y = rng.integers(0, 3, size=7)
    g, _, _ = np_forward_backward(
        x, y, [p[0] for p in params], [p[1] for p in params]
    )
    got = fgm(model, tf.constant(x), 0.3, norm=2, y=y)
    np.testing.assert_allclose(got.numpy(), x + 0.3 * np_l2_dir(g), atol=1e-10)


def test_seeded_random_start_is_deterministic(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    x = rng.normal(size=(4, 6)).astype(np.float32)
    kw = dict(norm=np.inf, steps=1, step_size=0.0, rand_init=True)
    a = pgd(model, x, 0.3, seed=5, **kw).numpy()
    b = pgd(model, x, 0.3, seed=5, **kw).numpy()
    c = pgd(model, x, 0.3, seed=6, **kw).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.01


def test_traceable_inside_outer_function_and_no_retrace(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    x = tf.constant(rng.normal(size=(4, 6)).astype(np.float32))

    @tf.function(jit_compile=True)
    def outer(x):
        return pgd(
            lambda z: model(z, training=False), x, 0.2, norm=2, steps=4,
            step_size=0.1,
        )  # fmt: skip

    eager = pgd(model, x, 0.2, norm=2, steps=4, step_size=0.1)
    np.testing.assert_allclose(outer(x).numpy(), eager.numpy(), atol=1e-5)
    from nsr_tf.attacks import _compile
    from nsr_tf.attacks import _steps

    fn = _compile.compiled(model, ("pgd", 2.0, _steps.softmax_cross_entropy,
                                   False), None)  # fmt: skip
    pgd(model, x, 0.3, norm=2, steps=5, step_size=0.05)
    assert fn.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(eps=-0.1), "`eps` must be >= 0. Received: eps=-0.1"),
        (dict(norm=1), "`norm` must be 2 or inf"),
        (dict(norm="l7"), "`norm` must be 2 or inf"),
        (dict(steps=0), "`steps` must be an integer >= 1. Received: steps=0"),
        (dict(steps=2.5), "`steps` must be an integer >= 1"),
        (dict(step_size=-1.0), "`step_size` must be >= 0"),
        (dict(y=[0, 1, 2]), "same number of examples"),
        (dict(clip_min=1.0, clip_max=0.0), "`clip_min` must be <= `clip_max`"),
    ],
)
def test_pgd_bad_input(rng, kwargs, match):
    model = linear_model(W, B)
    args = dict(eps=0.1, norm=2, steps=3, step_size=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        pgd(model, np.zeros((2, 3), np.float32), **args)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(eps=-1), "`eps` must be >= 0"),
        (dict(norm=0), "`norm` must be 2 or inf"),
        (dict(y=[1]), "same number of examples"),
    ],
)
def test_fgm_bad_input(kwargs, match):
    model = linear_model(W, B)
    args = dict(eps=0.1, norm=np.inf)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fgm(model, np.zeros((2, 3), np.float32), **args)
