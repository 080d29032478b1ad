"""Robust training on the bundled real MNIST (small subsets, a few epochs)."""

import keras
import numpy as np
import pytest

from nsr_tf import attacks
from nsr_tf import bounds
from nsr_tf import data
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


def test_at_beta_and_jiwp_penalties_shrink_tau_and_zeta(mnist):
    x, y, xt, yt = mnist
    runs = {
        "erm": RobustConfig(mode="erm"),
        # NSR Fig. 1(e) and (f) settings (nsr_paper.md §2.5), PGD-3.
        "at_beta": RobustConfig(
            mode="at_beta", eps=0.03, steps=3, zeta_weight=0.005, eps_w=0.01
        ),
        "jiwp": RobustConfig(
            mode="jiwp",
            tau_weight=0.02,
            zeta_weight=0.02,
            eps_w=0.02,
            eps_x=0.3,
        ),
    }
    stats = {}
    for name, config in runs.items():
        model = _train("nsr_mlp", config, x, y, epochs=1, batch_size=50)
        tau, zeta = bounds.margin_penalty_from_model(
            model, xt[:200], yt[:200], eps_x=0.3, eps_w=0.02
        )
        stats[name] = (float(np.mean(tau)), float(np.mean(zeta)))
    # Measured after one epoch: tau about 0.6x and zeta about 0.4x of ERM's.
    for name in ("at_beta", "jiwp"):
        assert stats[name][0] < 0.8 * stats["erm"][0], stats
        assert stats[name][1] < 0.6 * stats["erm"][1], stats
