"""Tests for nsr_tf.evaluation.masking: each screen fires on a model built
to trip it, and none fires on an honest linear model."""

import numpy as np
import pytest
import tensorflow as tf

from nsr_tf.evaluation import gradient_masking_report
from tests._attack_models import linear_model

W = np.array([[1.0, -1.0], [-1.0, 1.0]])
X1 = np.zeros((8, 1), np.float32)  # 1-D toy models start at d = 0
Y1 = np.zeros(8, np.int64)  # class 0, logits [m(d), 0], clean m(0) > 0


def _two_class(m):
    return tf.stack([m, tf.zeros_like(m)], axis=1)


def deceptive(x):
    """Loss has a local maximum at d = 0.3 and is large only beyond 0.8:
    FGM's single step of 1 gets there, PGD's small steps are trapped."""
    d = x[:, 0]
    m = 1 - 0.4 * tf.sin(np.pi * d / 0.6) - 60 * tf.nn.relu(d - 0.8) ** 2
    return _two_class(m)


def narrow_well(x):
    """A narrow misclassified well at d = 0.1: PGD steps of eps = 0.1 land in
    it; the steps of eps = 1 jump over it, so accuracy rises with eps."""
    d = x[:, 0]
    m = 1 - 0.1 * d - 3 * tf.exp(-(((d - 0.1) / 0.02) ** 2))
    return _two_class(m)


_frozen = linear_model(W, [0.0, 0.0])


def frozen(x):
    """Gradients are blocked: an all-zero input gradient everywhere."""
    return _frozen(tf.stop_gradient(x))


def _fired(report):
    return set(report.failures)


def test_honest_linear_model_passes(rng):
    model = linear_model(W, [0.0, 0.0])
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = np.argmax(model(x).numpy(), 1)
    report = gradient_masking_report(model, x, y, eps_grid=[0.1, 0.5, 1.0])
    assert report.passed, str(report)
    assert report.unbounded_accuracy == 0.0
    assert report.zero_gradient_fraction == 0.0
    assert list(report.pgd_accuracy) == sorted(report.pgd_accuracy)[::-1]


def test_pgd_weaker_than_fgm_fires():
    report = gradient_masking_report(deceptive, X1, Y1, eps_grid=[0.5, 1.0])
    assert _fired(report) == {"pgd_beats_fgm"}, str(report)
    assert report.fgm_accuracy[-1] == 0.0 and report.pgd_accuracy[-1] == 1.0


def test_accuracy_rising_with_eps_fires():
    report = gradient_masking_report(narrow_well, X1, Y1, eps_grid=[0.1, 1.0])
    assert _fired(report) == {"monotone"}, str(report)
    assert report.pgd_accuracy == (0.0, 1.0)


def test_zero_gradients_and_unbounded_fire():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]], np.float32)
    y = np.array([0, 1, 0])
    report = gradient_masking_report(frozen, x, y, eps_grid=[0.1, 1.0])
    assert _fired(report) == {"nonzero_gradients", "unbounded"}, str(report)
    assert report.zero_gradient_fraction == 1.0
    assert report.unbounded_accuracy == 1.0
    assert "FIRED" in str(report)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(eps_grid=[0.1]), "`eps_grid` must be 1-D"),
        (dict(eps_grid=[0.5, 0.1]), "`eps_grid` must be 1-D"),
        (dict(eps_grid=[0.0, 0.1]), "`eps_grid` must be 1-D"),
        (dict(norm=3), "`norm` must be 2 or inf"),
        (dict(steps=0), "`steps` must be an integer >= 1"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(eps_grid=[0.1, 0.2])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gradient_masking_report(frozen, X1, Y1, **args)
