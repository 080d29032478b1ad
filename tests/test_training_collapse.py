"""Tests for nsr_tf.training.CollapseMonitor: dead units, ratio, one warning."""

import warnings

import keras
import numpy as np
import pytest

from nsr_tf import models
from nsr_tf.training import CollapseMonitor
from nsr_tf.training import CollapseWarning
from nsr_tf.training import RobustConfig
from nsr_tf.training import robustify
from nsr_tf.training.collapse import dead_unit_fraction

SHAPE = (4, 4, 1)


def _model(config=None):
    net = models.build(
        "nsr_mlp", input_shape=SHAPE, num_classes=3, hidden_units=(16, 8)
    )
    return robustify(net, config or RobustConfig())


def _fit(model, x, y, monitor, optimizer):
    model.compile(optimizer=optimizer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            x, y, batch_size=16, epochs=2, verbose=0, callbacks=[monitor]
        ).history
    return history, [w for w in caught if w.category is CollapseWarning]


def test_dead_unit_fraction_matches_numpy(gaussian_clusters):
    x, _ = gaussian_clusters(64, 3, SHAPE)
    model = _model()
    kernel = model.get_layer("dense1").kernel.numpy()
    kernel[:, :6] = -np.abs(kernel[:, :6]) - 1.0  # 6 of 16 units die on x>0
    model.get_layer("dense1").kernel.assign(kernel)
    x = np.abs(x)
    want = np.mean(np.max(x.reshape(64, -1) @ kernel, axis=0) <= 0)
    assert want >= 6 / 16
    assert dead_unit_fraction(model, x, batch_size=20) == pytest.approx(want)


def test_a_dead_network_warns_once(gaussian_clusters):
    x, y = gaussian_clusters(64, 3, SHAPE)
    x = np.abs(x)
    model = _model()
    dense1 = model.get_layer("dense1")
    dense1.kernel.assign(-np.ones(dense1.kernel.shape, "float32"))
    monitor = CollapseMonitor(x[:32], check_every=1)
    history, caught = _fit(model, x, y, monitor, keras.optimizers.SGD(0.0))
    assert len(caught) == 1
    assert "100% of the first-layer ReLU units are dead" in str(
        caught[0].message
    )
    assert history["dead_units"] == [1.0, 1.0]
    assert monitor.collapse_reason is not None


def test_a_healthy_network_does_not_warn(gaussian_clusters):
    x, y = gaussian_clusters(128, 3, SHAPE)
    config = RobustConfig(mode="jiwp", eps_x=0.05, eps_w=0.001)
    model = _model(config)
    monitor = CollapseMonitor(x[:64])
    history, caught = _fit(model, x, y, monitor, keras.optimizers.Adam(1e-2))
    assert caught == []
    assert monitor.collapse_reason is None
    assert max(history["dead_units"]) < 0.5
    ratio = np.array(history["penalty"]) / np.array(history["ce"])
    np.testing.assert_allclose(history["penalty_ratio"], ratio, rtol=1e-5)


def test_chance_accuracy_warns(gaussian_clusters):
    x, y = gaussian_clusters(64, 3, SHAPE)
    model = _model()
    monitor = CollapseMonitor(chance_margin=1.0)  # every accuracy is chance
    _, caught = _fit(model, x, y, monitor, keras.optimizers.SGD(0.0))
    assert len(caught) == 1 and "at chance" in str(caught[0].message)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dead_threshold=1.5), "dead_threshold"),
        (dict(chance_margin=-0.1), "chance_margin"),
        (dict(check_every=-1), "check_every"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CollapseMonitor(**kwargs)
