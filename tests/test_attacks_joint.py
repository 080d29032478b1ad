"""Tests for nsr_tf.attacks.joint_pgd / universal_joint_pgd."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNDense
from nsr_tf import perturb
from nsr_tf.attacks import joint_pgd
from nsr_tf.attacks import pgd
from nsr_tf.attacks import universal_joint_pgd
from tests._attack_models import np_forward_backward
from tests._attack_models import relu_mlp


def _np_joint(x, y, kernels, biases, eps_x, eps_w, ax, aw, steps, relative):
    x0, xa = x.copy(), x.copy()
    ws = [k.copy() for k in kernels]
    radii = [eps_w * np.abs(k) if relative else eps_w for k in kernels]
    for _ in range(steps):
        gx, gws, _ = np_forward_backward(xa, y, ws, biases)
        xa = np.clip(xa + ax * np.sign(gx), x0 - eps_x, x0 + eps_x)
        ws = [
            np.clip(w + aw * np.sign(g), k - r, k + r)
            for w, g, k, r in zip(ws, gws, kernels, radii, strict=True)
        ]
    return xa, [w - k for w, k in zip(ws, kernels, strict=True)]


def _snapshot(model):
    return [np.array(v.numpy(), copy=True) for v in model.variables]


def _assert_unchanged(model, snap):
    for v, s in zip(model.variables, snap, strict=True):
        np.testing.assert_array_equal(v.numpy(), s)


@pytest.mark.parametrize("relative", [False, True])
def test_matches_numpy_reference_on_relu_mlp(rng, relative):
    model, params = relu_mlp(rng, sizes=(6, 8, 8, 3), dtype="float64")
    kernels, biases = [p[0] for p in params], [p[1] for p in params]
    x = rng.normal(size=(10, 6))
    y = rng.integers(0, 3, size=10)
    eps_w = 0.2 if relative else 0.02
    kw = dict(eps_x=0.3, eps_w=eps_w, step_size_x=0.04, step_size_w=0.004)
    exp_x, exp_d = _np_joint(
        x, y, kernels, biases, 0.3, eps_w, 0.04, 0.004, 20, relative
    )
    snap = _snapshot(model)
    got_x, got_d = joint_pgd(
        model, tf.constant(x), y, steps=20, relative=relative, **kw
    )
    np.testing.assert_allclose(got_x.numpy(), exp_x, atol=1e-5, rtol=0)
    assert len(got_d) == 3
    for g, e in zip(got_d, exp_d, strict=True):
        np.testing.assert_allclose(g.numpy(), e, atol=1e-5, rtol=0)
    assert max(np.abs(e).max() for e in exp_d) > 1e-3
    _assert_unchanged(model, snap)


def test_input_only_equals_linf_pgd_and_weight_only_keeps_x(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    x = rng.uniform(0, 1, (8, 6)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    xa, d = joint_pgd(
        model, x, y, eps_x=0.1, eps_w=0.0, steps=10, step_size_x=0.02,
        clip_min=0.0, clip_max=1.0,
    )  # fmt: skip
    ref = pgd(
        model, x, 0.1, norm=np.inf, steps=10, step_size=0.02, y=y,
        clip_min=0.0, clip_max=1.0,
    )  # fmt: skip
    np.testing.assert_array_equal(xa.numpy(), ref.numpy())
    assert all(np.all(di.numpy() == 0) for di in d)
    xw, dw = joint_pgd(model, x, y, eps_x=0.0, eps_w=0.01, steps=10)
    np.testing.assert_array_equal(xw.numpy(), x)
    assert max(np.abs(di.numpy()).max() for di in dw) > 0


@pytest.mark.parametrize("relative", [False, True])
def test_bounds_hold(rng, relative):
    model, params = relu_mlp(rng, dtype="float32")
    x = rng.uniform(0, 1, (8, 6)).astype(np.float32)
    xa, d = joint_pgd(
        model, x, None, eps_x=0.2, eps_w=0.05, steps=30, step_size_x=0.05,
        step_size_w=0.01, relative=relative, rand_init=True, seed=0,
        clip_min=0.0, clip_max=1.0,
    )  # fmt: skip
    xa = xa.numpy()
    assert np.abs(xa - x).max() <= 0.2 + 1e-6
    assert xa.min() >= 0 and xa.max() <= 1
    for di, p in zip(d, params, strict=True):
        bound = 0.05 * np.abs(p[0]) if relative else 0.05
        assert np.all(np.abs(di.numpy()) <= bound + 1e-6)


def test_selected_weights_and_biases(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    x = rng.normal(size=(4, 6)).astype(np.float32)
    last = model.layers[-1].kernel
    _, d = joint_pgd(model, x, eps_x=0.1, eps_w=0.01, steps=3, weights=[last])
    assert len(d) == 1 and d[0].shape == last.shape
    _, d = joint_pgd(
        model, x, eps_x=0.1, eps_w=0.01, steps=3, include_bias=True
    )
    assert [tuple(t.shape) for t in d] == [(6, 8), (8,), (8, 3), (3,)]


def test_universal_equals_one_big_batch_and_differs_per_batch(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    x = rng.normal(size=(10, 6)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    kw = dict(eps_x=0.1, eps_w=0.02, steps=15, step_size_w=0.002)
    xb, db = joint_pgd(model, x, y, **kw)
    xu, du = universal_joint_pgd(model, x, y, batch_size=4, **kw)
    np.testing.assert_allclose(xu.numpy(), xb.numpy(), atol=1e-6)
    for a, b in zip(du, db, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    xf, df = universal_joint_pgd(model, x, y, batch_size=3, **kw)
    np.testing.assert_allclose(xf.numpy(), xb.numpy(), atol=1e-6)
    _, d_half = joint_pgd(model, x[:4], y[:4], **kw)
    assert (
        max(
            np.abs(a.numpy() - b.numpy()).max()
            for a, b in zip(d_half, db, strict=True)
        )
        > 0
    )


def test_traceable_inside_tf_function(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    x = tf.constant(rng.normal(size=(4, 6)).astype(np.float32))

    @tf.function
    def outer(x):
        xa, d = joint_pgd(model, x, eps_x=0.1, eps_w=0.01, steps=5)
        return perturb.perturbed_call(model, xa, d)

    xa, d = joint_pgd(model, x, eps_x=0.1, eps_w=0.01, steps=5)
    eager = perturb.perturbed_call(model, xa, d)
    np.testing.assert_allclose(outer(x).numpy(), eager.numpy(), atol=1e-5)


def _sn_model(beta):
    return keras.Sequential(
        [
            keras.Input((6,)),
            SNDense(8, beta=beta, activation="relu"),
            SNDense(3, beta=beta),
        ]
    )


def test_sn_model_perturbs_the_effective_kernel(rng):
    sn = _sn_model(beta=0.5)
    x = rng.normal(size=(6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    sn(x)
    effective = [layer.normalized_kernel().numpy() for layer in sn.layers]
    assert np.abs(effective[0] - sn.layers[0].kernel.numpy()).max() > 1e-3
    plain, _ = relu_mlp(rng, dtype="float32")
    for layer, k, snl in zip(plain.layers, effective, sn.layers, strict=True):
        layer.set_weights([k, snl.bias.numpy()])
    snap = _snapshot(sn)
    kw = dict(eps_x=0.1, eps_w=0.01, steps=10, step_size_w=0.002)
    xs, ds = joint_pgd(sn, x, y, **kw)
    xp, dp = joint_pgd(plain, x, y, **kw)
    np.testing.assert_allclose(xs.numpy(), xp.numpy(), atol=1e-5)
    for a, b in zip(ds, dp, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        perturb.perturbed_call(sn, xs, ds).numpy(),
        perturb.perturbed_call(plain, xp, dp).numpy(),
        atol=1e-5,
    )
    _assert_unchanged(sn, snap)  # kernels and the power-iteration state u


@pytest.mark.parametrize("universal", [False, True])
def test_no_gradient_reaches_or_changes_the_model_variables(rng, universal):
    # Under an outer tape (as in a training step) neither the adversarial
    # inputs nor the weight deltas depend on the model's variables, and
    # neither the kernels nor the SN power-iteration state u change.
    plain, _ = relu_mlp(rng, dtype="float32")
    sn = _sn_model(beta=0.5)
    x = tf.constant(rng.normal(size=(6, 6)).astype(np.float32))
    sn(x)
    for model in (plain, sn):
        snap = _snapshot(model)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            attack = universal_joint_pgd if universal else joint_pgd
            extra = dict(batch_size=4) if universal else {}
            xa, d = attack(
                model, x, eps_x=0.1, eps_w=0.01, steps=4, step_size_w=0.005,
                include_bias=True, **extra,
            )  # fmt: skip
            total = tf.reduce_sum(xa) + tf.add_n([tf.reduce_sum(t) for t in d])
        assert max(float(tf.reduce_max(tf.abs(t))) for t in d) > 0
        grads = tape.gradient(total, [*model.variables, x])
        assert all(g is None for g in grads), grads
        _assert_unchanged(model, snap)


def _tripwire_model(rng, limit):
    class Tripwire(keras.layers.Layer):
        def call(self, x):
            tf.debugging.assert_less(tf.reduce_max(x), limit)
            return x

    model, _ = relu_mlp(rng, dtype="float32")
    return keras.Sequential([keras.Input((6,)), Tripwire(), *model.layers])


def test_saved_model_matches_keras_and_is_restored(rng, tmp_path):
    model, _ = relu_mlp(rng, dtype="float32")
    model.export(str(tmp_path / "sm"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    snap = [np.array(v.numpy(), copy=True) for v in loaded.variables]
    x = rng.normal(size=(5, 6)).astype(np.float32)
    kw = dict(eps_x=0.1, eps_w=0.01, steps=10, step_size_w=0.002)
    universal = functools.partial(universal_joint_pgd, batch_size=2)
    for attack in (joint_pgd, universal):
        xk, dk = attack(model, x, **kw)
        xs, ds = attack(loaded, x, **kw)
        np.testing.assert_allclose(xs.numpy(), xk.numpy(), atol=1e-6)
        for a, b in zip(ds, dk, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
        for v, s in zip(loaded.variables, snap, strict=True):
            np.testing.assert_array_equal(v.numpy(), s)


def test_variables_restored_when_the_attack_raises(rng, tmp_path):
    # The tripwire fires once x_adv exceeds 1, i.e. mid-attack, after the
    # SavedModel's variables have been overwritten by W~.
    model = _tripwire_model(rng, 1.0)
    model.export(str(tmp_path / "sm"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    snap_l = [np.array(v.numpy(), copy=True) for v in loaded.variables]
    snap_k = _snapshot(model)
    x = np.full((3, 6), 0.5, np.float32)
    for target in (loaded, model):
        with pytest.raises(tf.errors.InvalidArgumentError):
            joint_pgd(target, x, eps_x=2.0, eps_w=0.5, steps=20,
                      step_size_x=0.1, step_size_w=0.05)  # fmt: skip
    for v, s in zip(loaded.variables, snap_l, strict=True):
        np.testing.assert_array_equal(v.numpy(), s)
    _assert_unchanged(model, snap_k)


def _trained_mnist_mlp():
    from nsr_tf.data import load

    x, y = load("mnist", "train")
    x = x[:6000].reshape(6000, -1)
    y = y[:6000]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(64, activation="relu", use_bias=False),
            keras.layers.Dense(10, use_bias=False),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=100, epochs=3, verbose=0)
    xv, yv = load("mnist", "validation")
    return model, xv[:300].reshape(300, -1), yv[:300]


def test_joint_at_least_as_damaging_on_trained_mnist_mlp():
    model, x, y = _trained_mnist_mlp()
    snap = _snapshot(model)

    def accuracy(eps_x, eps_w):
        xa, d = joint_pgd(model, x, y, eps_x=eps_x, eps_w=eps_w, steps=100,
                          clip_min=0.0, clip_max=1.0)  # fmt: skip
        logits = perturb.perturbed_call(model, xa, d)
        return float(np.mean(np.argmax(logits, 1) == y))

    clean = float(np.mean(np.argmax(model(x), 1) == y))
    acc_x, acc_w, acc_j = (
        accuracy(0.05, 0),
        accuracy(0, 0.001),
        accuracy(0.05, 0.001),
    )
    assert clean > 0.85
    assert acc_x < clean and acc_w < clean
    assert acc_j <= min(acc_x, acc_w)
    assert acc_j < min(acc_x, acc_w) or acc_j == 0.0
    _assert_unchanged(model, snap)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(eps_x=-0.1), "`eps_x` must be >= 0. Received: eps_x=-0.1"),
        (dict(eps_w=-1.0), "`eps_w` must be >= 0"),
        (dict(steps=0), "`steps` must be an integer >= 1"),
        (dict(step_size_w=-0.1), "`step_size_w` must be >= 0"),
        (dict(y=[0, 1]), "same number of examples"),
        (dict(batch_size=0, universal=True), "`batch_size` must be"),
    ],
)
def test_bad_input(rng, kwargs, match):
    model, _ = relu_mlp(rng, dtype="float32")
    args = dict(y=np.zeros(4, int), eps_x=0.1, eps_w=0.01, steps=2)
    args.update(kwargs)
    y = args.pop("y")
    attack = universal_joint_pgd if args.pop("universal", 0) else joint_pgd
    with pytest.raises(ValueError, match=match):
        attack(model, np.zeros((4, 6), np.float32), y, **args)


def test_weights_not_in_model_rejected(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    other, _ = relu_mlp(rng, dtype="float32")
    with pytest.raises(ValueError, match=r"`weights` must be variables of"):
        joint_pgd(model, np.zeros((2, 6), np.float32), eps_x=0.1, eps_w=0.1,
                  weights=[other.layers[0].kernel])  # fmt: skip
    with pytest.raises(ValueError, match="`model` must be a Keras model"):
        joint_pgd(lambda z: z, np.zeros((2, 6)), eps_x=0.1, eps_w=0.1)
