"""Certificates on a real MNIST model: certified <= attacked, monotone."""

import keras
import numpy as np
import pytest

from nsr_tf import data
from nsr_tf import evaluation
from nsr_tf import models
from nsr_tf.attacks import pgd

EPS_L2 = [0.0, 0.25, 0.5, 1.0]
EPS_X = [0.0, 0.002, 0.005]
EPS_W = [0.0, 0.0002, 0.0005]


@pytest.fixture(scope="module")
def mnist_model():
    """A bias-free SN (beta = 1) ReLU MLP 784-64-32-10 after one epoch on
    2,000 bundled MNIST images; 200 test images."""
    x, y = data.load("mnist", "train")
    xt, yt = data.load("mnist", "test")
    keras.utils.set_random_seed(0)
    model = models.build(
        "nsr_mlp", input_shape=(28, 28, 1), hidden_units=(64, 32), beta=1.0
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x[:2000], y[:2000], batch_size=100, epochs=1, verbose=0)
    return model, xt[:200], yt[:200]


def _clean(model, x, y):
    return float(np.mean(np.argmax(np.asarray(model(x)), -1) == y))


def test_l2_certified_below_pgd(mnist_model):
    model, x, y = mnist_model
    cert = evaluation.certified_accuracy(model, x, y, eps=EPS_L2)
    clean = _clean(model, x, y)
    assert cert[0] == clean > 0.3
    assert np.all(np.diff(cert) <= 0)
    assert cert[1] > 0
    for eps, c in zip(EPS_L2[1:], cert[1:], strict=True):
        adv = pgd(model, x, eps, norm=2, steps=10, step_size=eps / 4, y=y)
        attacked = _clean(model, np.asarray(adv), y)
        print(f"eps={eps}: certified {c:.3f} <= PGD-l2 {attacked:.3f}")
        assert c <= attacked


def test_joint_certified_surface_below_attacked(mnist_model):
    model, x, y = mnist_model
    cert, cert_auc = evaluation.certified_surface(model, x, y, EPS_X, EPS_W)
    attacked, auc = evaluation.accuracy_surface(
        model, x, y, EPS_X, EPS_W, steps=5, step_size_x=0.002,
        step_size_w=0.0002,
    )  # fmt: skip
    print("certified", cert, "attacked", attacked)
    assert cert[0, 0] == _clean(model, x, y)
    assert np.all(cert <= attacked + 1e-12)
    assert np.all(np.diff(cert, axis=0) <= 0)
    assert np.all(np.diff(cert, axis=1) <= 0)
    assert 0 <= cert_auc <= auc
    assert cert[1, 1] > 0


def test_joint_interval_certifies_where_tau_zeta_does_not(mnist_model):
    model, x, y = mnist_model
    surface, _ = evaluation.certified_surface(model, x, y, EPS_X, EPS_W)
    for i, j in [(2, 0), (1, 1), (0, 2)]:
        kw = dict(eps_x=EPS_X[i], eps_w=EPS_W[j])
        joint, sound = (
            evaluation.bound_certified_accuracy(model, x, y, variant=v, **kw)
            for v in ("joint_interval", "sound")
        )
        print(f"{kw}: joint interval {joint:.3f}, sound tau+zeta {sound:.3f}")
        assert joint == surface[i, j]
        assert joint >= sound
        if (i, j) == (2, 0):
            assert joint > 0 and sound == 0
