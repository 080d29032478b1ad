"""Robust training on the bundled real MNIST (small subsets, a few epochs)."""

import keras
import numpy as np
import pytest

from nsr_tf import attacks
from nsr_tf import bounds
from nsr_tf import data
from nsr_tf import evaluation
from nsr_tf import models
from nsr_tf.training import RobustConfig
from nsr_tf.training import robustify


@pytest.fixture(scope="module")
def mnist():
    x, y = data.load("mnist", "train")
    xt, yt = data.load("mnist", "test")
    idx = np.random.default_rng(0).permutation(len(x))[:2000]
    return x[idx], y[idx], xt[:1000], yt[:1000]


def _train(name, config, x, y, *, epochs, batch_size, **build_kwargs):
    keras.utils.set_random_seed(0)
    net = models.build(name, input_shape=(28, 28, 1), **build_kwargs)
    model = robustify(net, config)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return model


def test_fgm_training_beats_erm_under_fgm(mnist):
    x, y, xt, yt = mnist
    eps = 2.0  # l2, about 0.2 * C2 on MNIST
    accs = {}
    for mode, kwargs in [("erm", {}), ("fgm", dict(eps=eps, norm=2))]:
        model = _train(
            "mlp1", RobustConfig(mode=mode, **kwargs), x, y, epochs=3,
            batch_size=64, units=64,
        )  # fmt: skip
        fn = lambda z, m=model: m(z, training=False)  # noqa: E731
        x_adv = attacks.fgm(fn, xt, eps, norm=2)
        accs[mode] = np.mean(np.argmax(fn(x_adv).numpy(), -1) == yt)
    # Measured: ERM 0.09, FGM-trained 0.40 (same data, steps and seed).
    assert accs["fgm"] > accs["erm"] + 0.15, accs


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), -1) == y))


def test_at_beta_and_jiwp_penalties_shrink_tau_and_zeta(mnist):
    x, y, xt, yt = mnist
    runs = {
        "erm": RobustConfig(mode="erm"),
        # NSR Fig. 1(e) and (f) settings (nsr_paper.md §2.5, the library's
        # defaults), PGD-3.
        "at_beta": RobustConfig(mode="at_beta", eps=0.03, steps=3),
        "jiwp": RobustConfig(mode="jiwp"),
    }
    stats = {}
    for name, config in runs.items():
        model = _train("nsr_mlp", config, x, y, epochs=1, batch_size=50)
        tau, zeta = bounds.margin_penalty_from_model(
            model, xt[:200], yt[:200], eps_x=0.3, eps_w=0.02
        )
        acc = _accuracy(model, xt, yt)
        stats[name] = (float(np.mean(tau)), float(np.mean(zeta)), acc)
    # Measured after one epoch (40 steps) at the default penalty scale:
    # tau 0.67x / 0.63x and zeta 0.63x / 0.59x of ERM's, test accuracy
    # 0.34 (AT+β, PGD training learns slowly) / 0.66 (JIWP), ERM 0.75.
    for name in ("at_beta", "jiwp"):
        assert stats[name][0] < 0.8 * stats["erm"][0], stats
        assert stats[name][1] < 0.7 * stats["erm"][1], stats
        # ... and the network still learns (a dead one stays at 0.1).
        assert stats[name][2] > 0.25, stats
    assert stats["jiwp"][2] > 0.5, stats


def test_weight_perturb_defaults_train_and_resist_weight_perturbation():
    """``RobustConfig(mode="weight_perturb")`` with nothing else trains the
    paper's MLP on real MNIST and is more accurate than Standard under a
    weight-only joint PGD at eps_w = 0.005 (at the printed
    penalty scale it would stay at chance)."""
    x, y = data.load("mnist", "train")
    xt, yt = data.load("mnist", "test")
    idx = np.random.default_rng(0).permutation(len(x))[:5000]
    x, y, xt, yt = x[idx], y[idx], xt[:1000], yt[:1000]
    accs = {}
    for name, config in (
        ("standard", RobustConfig()),
        ("weight_perturb", RobustConfig(mode="weight_perturb")),
    ):
        model = _train("nsr_mlp", config, x, y, epochs=1, batch_size=50)
        clean = _accuracy(model, xt, yt)
        attacked = evaluation.robust_accuracy(
            model, (xt, yt), attacks.joint_pgd, batch_size=500,
            progress=False, attack_labels="true", eps_x=0.0, eps_w=0.005,
            steps=20, step_size_x=0.0, step_size_w=0.0005,
        )  # fmt: skip
        accs[name] = (clean, attacked)
    # Measured (5,000 images, 1 epoch, Adam 1e-3): Standard 0.85 clean,
    # 0.11 attacked; Weight Perturb 0.74 clean, 0.36 attacked.
    assert accs["weight_perturb"][0] > 0.6, accs
    assert accs["weight_perturb"][1] > accs["standard"][1] + 0.15, accs
