"""Tests for nsr_tf.training.RobustModel: every mode through fit/evaluate."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNDense
from nsr_tf import attacks
from nsr_tf import bounds
from nsr_tf import models
from nsr_tf import perturb
from nsr_tf.training import RobustConfig
from nsr_tf.training import RobustModel
from nsr_tf.training import robustify

NUM_CLASSES = 3
SHAPE = (4, 4, 1)

# One small, learnable configuration per mode.
MODE_KWARGS = {
    "erm": {},
    "fgm": dict(eps=0.3),
    "pgm": dict(eps=0.3, steps=3),
    "wrm": dict(gamma=2.0, steps=3),
    "at": dict(eps=0.05, steps=3),
    "at_beta": dict(
        eps=0.05, steps=3, zeta_weight=0.01, eps_w=0.01, penalty_scale=1.0
    ),
    "weight_perturb": dict(
        tau_weight=0.25,
        zeta_weight=0.05,
        eps_x=0.0,
        eps_w=0.01,
        penalty_scale=1.0,
    ),
    "jiwp": dict(
        tau_weight=0.01,
        zeta_weight=0.01,
        eps_w=0.01,
        eps_x=0.1,
        penalty_scale=1.0,
    ),
    "joint_at": dict(eps_x=0.05, eps_w=0.005, steps=2),
}


@pytest.fixture
def data(gaussian_clusters):
    """Three well-separated Gaussian clusters in 16 dimensions."""
    return gaussian_clusters(128, NUM_CLASSES, SHAPE)


def _robust(mode, *, sn_beta=float("inf"), **overrides):
    net = models.build(
        "nsr_mlp",
        input_shape=SHAPE,
        num_classes=NUM_CLASSES,
        hidden_units=(16, 8),
        beta=sn_beta,
    )
    kwargs = {**MODE_KWARGS[mode], **overrides}
    return robustify(net, RobustConfig(mode=mode, **kwargs))


def _sn_layers(model):
    return [la for la in model.layers if isinstance(la, SNDense)]


def _np_power_iteration(kernel, u):
    """One step of the SN paper's dense power iteration (spec §3), float64."""

    def normalize(t):
        return t / (np.linalg.norm(t) + 1e-12)

    v = normalize(u @ kernel.T)
    return normalize(v @ kernel)


@pytest.mark.parametrize("mode", sorted(MODE_KWARGS))
def test_mode_updates_u_once_per_step_and_the_loss_falls(mode, data):
    x, y = data
    model = _robust(mode, sn_beta=1.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    sn = _sn_layers(model)
    kernels = [la.kernel.numpy().astype(np.float64) for la in sn]
    us = [la.u.numpy().astype(np.float64) for la in sn]

    # One step: u must be exactly one power iteration from the old (W, u).
    model.fit(x[:32], y[:32], batch_size=32, epochs=1, verbose=0)
    for layer, kernel, u in zip(sn, kernels, us, strict=True):
        once = _np_power_iteration(kernel, u)
        twice = _np_power_iteration(kernel, once)
        assert np.max(np.abs(once - twice)) > 1e-3  # the check can fail
        np.testing.assert_allclose(layer.u.numpy(), once, atol=2e-5)

    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0).history
    after = model.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    assert np.all(np.isfinite(history["loss"]))
    assert after["loss"] < 0.8 * before["loss"], (before, after)
    expected = {"loss", "clean_accuracy"}
    if mode in ("fgm", "pgm", "wrm", "at", "at_beta", "joint_at"):
        expected.add("adv_accuracy")
    if mode in ("at_beta", "weight_perturb", "jiwp"):
        expected |= {"tau", "zeta", "ce", "penalty"}
    assert set(history) == expected


@pytest.mark.parametrize("mode", ["pgm", "joint_at"])
def test_evaluate_and_predict_never_update_u(mode, data):
    x, y = data
    model = _robust(mode, sn_beta=1.5)
    model.compile(optimizer="adam")
    model.fit(x[:32], y[:32], epochs=1, verbose=0)
    us = [la.u.numpy().copy() for la in _sn_layers(model)]
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    for layer, u in zip(_sn_layers(model), us, strict=True):
        np.testing.assert_array_equal(layer.u.numpy(), u)


@pytest.fixture(scope="module")
def trained_erm():
    """An ERM model and its data, shared (attacks only read it; beta=inf, so
    the u updates of SGD(0) steps do not change its logits)."""
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(NUM_CLASSES, 16))
    y = rng.integers(0, NUM_CLASSES, 128)
    x = centers[y] + 0.5 * rng.normal(size=(128, 16))
    x, y = x.reshape((128, *SHAPE)).astype("float32"), y.astype("int64")
    keras.utils.set_random_seed(7)
    model = _robust("erm")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, y, batch_size=32, epochs=5, verbose=0)
    return model, x, y


def _model_fn(model):
    return lambda z: model(z, training=False)


@pytest.mark.parametrize(
    "mode, kwargs",
    [
        ("fgm", dict(eps=2.0, norm=2)),
        ("fgm", dict(eps=0.5, norm="inf")),
        ("pgm", dict(eps=2.0, steps=4)),
        ("wrm", dict(gamma=0.05, steps=4)),
        ("at", dict(eps=0.5, steps=4)),
    ],
)
def test_adversarial_accuracy_uses_the_configured_attack(
    mode, kwargs, trained_erm
):
    erm, x, y = trained_erm
    config = RobustConfig(mode=mode, **kwargs)
    model = robustify(erm, config)
    fn = _model_fn(model)
    clean = np.argmax(fn(x).numpy(), axis=-1)
    labels = y if config.labels == "true" else clean
    if mode == "fgm":
        x_adv = attacks.fgm(fn, x, config.eps, norm=config.norm, y=labels)
    elif mode == "wrm":
        x_adv = attacks.wrm(fn, x, config.gamma, steps=config.steps, y=labels)
    else:
        x_adv = attacks.pgd(
            fn, x, config.eps, norm=config.norm, steps=config.steps,
            step_size=config.step_size, y=labels,
        )  # fmt: skip
    want_adv = np.mean(np.argmax(fn(x_adv).numpy(), axis=-1) == y)
    want_clean = np.mean(clean == y)
    assert want_adv < want_clean - 0.05  # the attack does bite

    # Training metrics (SGD with lr 0 keeps the weights) and evaluate agree.
    # The compiled step and the eager reference may round differently, which
    # can flip one example sitting on a decision boundary: allow one.
    one = 1.0 / len(y) + 1e-6
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    hist = model.fit(x, y, batch_size=128, epochs=1, verbose=0).history
    assert hist["adv_accuracy"][0] == pytest.approx(want_adv, abs=one)
    assert hist["clean_accuracy"][0] == pytest.approx(want_clean, abs=1e-6)
    result = model.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    assert result["adv_accuracy"] == pytest.approx(want_adv, abs=one)


def _np_ce(logits, y):
    logits = logits.astype(np.float64)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y]


@pytest.mark.parametrize(
    "mode, kwargs",
    [
        # default penalty_scale (1/50)
        ("jiwp", dict(tau_weight=0.3, zeta_weight=0.2, eps_x=0.1, eps_w=0.02,
                      penalty_scale=None)),
        ("weight_perturb", dict(tau_weight=0.0, zeta_weight=0.5, eps_x=0.0,
                                eps_w=0.01)),
        ("at_beta", dict(eps=0.1, steps=2, tau_weight=0.1, zeta_weight=0.4,
                         eps_w=0.01)),
    ],
)  # fmt: skip
def test_loss_is_eq23_with_the_config_eps(mode, kwargs, data):
    x, y = data
    model = _robust(mode, **kwargs)
    cfg = model.robust_config
    fn = _model_fn(model)
    x_ce = x
    if mode == "at_beta":
        x_ce = attacks.pgd(
            fn, x, cfg.eps, norm=cfg.norm, steps=cfg.steps,
            step_size=cfg.step_size, y=y,
        ).numpy()  # fmt: skip
    ce = _np_ce(fn(x_ce).numpy(), y).mean()
    tau, zeta = bounds.margin_penalty_from_model(
        model, x, y, eps_x=cfg.eps_x, eps_w=cfg.eps_w, variant=cfg.variant
    )
    tau, zeta = tau.numpy(), zeta.numpy()
    assert np.all(zeta > 0)
    want = ce + cfg.penalty_scale * np.mean(
        cfg.tau_weight * tau + cfg.zeta_weight * zeta
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    hist = model.fit(x, y, batch_size=128, epochs=1, verbose=0).history
    assert hist["loss"][0] == pytest.approx(want, rel=1e-5)
    assert hist["tau"][0] == pytest.approx(tau.mean(), rel=1e-5)
    assert hist["zeta"][0] == pytest.approx(zeta.mean(), rel=1e-5)
    assert hist["ce"][0] == pytest.approx(ce, rel=1e-5)
    assert hist["penalty"][0] == pytest.approx(want - ce, rel=1e-4)


def test_joint_at_applies_the_perturbed_gradient_to_clean_weights(data):
    x, y = data
    x, y = x[:32], y[:32]
    model = _robust("joint_at", eps_x=0.1, eps_w=0.02, steps=3)
    cfg = model.robust_config
    before = [v.numpy().astype(np.float64) for v in model.trainable_variables]
    x_adv, deltas = attacks.joint_pgd(
        model, x, y, eps_x=cfg.eps_x, eps_w=cfg.eps_w, steps=cfg.steps,
        step_size_x=cfg.step_size, step_size_w=cfg.step_size_w,
    )  # fmt: skip
    assert max(float(np.max(np.abs(d))) for d in deltas) > 0
    targets = perturb.weight_targets(model)
    with tf.GradientTape() as tape:
        values = [
            t.variable.value + d for t, d in zip(targets, deltas, strict=True)
        ]
        logits = perturb.call_with_weights(model, x_adv, targets, values)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        )
    grads = tape.gradient(loss, model.trainable_variables)
    lr = 0.5
    model.compile(optimizer=keras.optimizers.SGD(lr))
    hist = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    assert hist["loss"][0] == pytest.approx(float(loss), rel=1e-5)
    for var, w0, g in zip(
        model.trainable_variables, before, grads, strict=True
    ):
        np.testing.assert_allclose(var.numpy(), w0 - lr * g.numpy(), atol=1e-6)


@pytest.mark.parametrize("mode", ["fgm", "jiwp"])
def test_sample_weights_reduce_like_keras_losses(mode, data):
    x, y = data
    model = _robust(mode)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    sw = np.zeros(len(y), "float32")
    sw[:10] = 1.0
    full = model.evaluate(
        x[:10], y[:10], batch_size=128, verbose=0, return_dict=True
    )
    weighted = model.evaluate(
        x, y, sample_weight=sw, batch_size=128, verbose=0, return_dict=True
    )
    clean = np.argmax(model(x[:10]).numpy(), -1) == y[:10]
    assert weighted["clean_accuracy"] == pytest.approx(clean.mean())
    # Keras' "sum_over_batch_size": sum(w * loss) / batch size, penalty too.
    assert weighted["loss"] == pytest.approx(full["loss"] * 10 / 128, rel=1e-5)


def test_functional_construction_and_default_loss(data):
    x, y = data
    inputs = keras.Input(SHAPE)
    h = keras.layers.Flatten()(inputs)
    outputs = SNDense(NUM_CLASSES, use_bias=False, name="logits")(h)
    model = RobustModel(
        inputs, outputs, config=RobustConfig(mode="pgm", eps=0.1, steps=2)
    )
    assert model.robust_config.mode == "pgm"
    model.compile(optimizer="adam")  # loss defaults to CE on logits
    hist = model.fit(x, y, epochs=1, verbose=0).history
    assert np.isfinite(hist["loss"][0])
    seq = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                            keras.layers.Dense(NUM_CLASSES)])  # fmt: skip
    wrapped = robustify(seq, {"mode": "fgm", "eps": 0.1})
    assert wrapped.robust_config.eps == 0.1
    assert wrapped.layers[-1] is seq.layers[-1]  # shares the weights


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3)

    def call(self, x):
        return self.dense(x)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: robustify(_Subclassed(), RobustConfig()), "functional"),
        (
            lambda: robustify(
                models.build("mlp1", input_shape=SHAPE, units=8),
                RobustConfig(mode="jiwp", zeta_weight=0.1, eps_w=0.01),
            ),
            "activation",
        ),
        (
            lambda: robustify(
                models.build("elunet", input_shape=(28, 28, 1)),
                RobustConfig(mode="at_beta", eps=0.1),
            ),
            "activation",
        ),
        (
            lambda: robustify(
                models.build("nsr_mlp", input_shape=SHAPE), config="pgm"
            ),
            "`config` must be",
        ),
    ],
)
def test_bad_setups_raise_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()
