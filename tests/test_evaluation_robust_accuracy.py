"""Tests for nsr_tf.evaluation.robust_accuracy."""

import numpy as np
import pytest
import tensorflow as tf

from nsr_tf import attacks
from nsr_tf import perturb
from nsr_tf.evaluation import robust_accuracy
from tests._attack_models import linear_model
from tests._attack_models import relu_mlp

W = np.array([[1.0, -1.0], [-1.0, 1.0]])


def _points():
    # logits difference z1 - z0 = 2 (x1 - x0): class 0 iff x0 > x1, with
    # linf distance to the boundary |x0 - x1| / 2.
    x = np.array(
        [[0.5, 0.0], [0.0, 0.3], [0.2, 0.0], [0.0, 1.0], [0.05, 0.0]],
        np.float32,
    )
    y = np.array([0, 1, 0, 1, 1])  # the last one is misclassified
    return x, y


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_clean_and_linf_accuracy_closed_form(batch_size):
    model = linear_model(W, [0.0, 0.0])
    x, y = _points()
    clean = robust_accuracy(model, (x, y), None, batch_size=batch_size,
                            progress=False)  # fmt: skip
    assert clean == pytest.approx(4 / 5)
    # eps = 0.12: points with margin |x0 - x1| / 2 <= 0.12 flip: 0.2 -> 0.1
    # flips, 0.3 -> 0.15 and larger survive.
    acc = robust_accuracy(
        model, (x, y), attacks.fgm, batch_size=batch_size, progress=False,
        attack_labels="true", eps=0.12, norm=np.inf,
    )  # fmt: skip
    assert acc == pytest.approx(3 / 5)


def test_predicted_label_attack_can_fix_a_mistake():
    # Attacking the (wrong) prediction of the last point pushes it across
    # to the true class: accuracy under "predicted" is then higher.
    model = linear_model(W, [0.0, 0.0])
    x, y = _points()
    kw = dict(eps=0.12, norm=np.inf, progress=False)
    pred = robust_accuracy(model, (x, y), attacks.fgm, **kw)
    true = robust_accuracy(model, (x, y), attacks.fgm, attack_labels="true",
                           **kw)  # fmt: skip
    assert pred == pytest.approx(4 / 5) and true == pytest.approx(3 / 5)


def test_dataset_input_and_saved_model(rng, tmp_path):
    model, _ = relu_mlp(rng, dtype="float32")
    x = rng.normal(size=(20, 6)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    kw = dict(eps=0.3, norm=2, steps=5, step_size=0.1, progress=False)
    a = robust_accuracy(model, (x, y), attacks.pgd, batch_size=8, **kw)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    b = robust_accuracy(model, ds, attacks.pgd, **kw)
    model.export(str(tmp_path / "sm"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    c = robust_accuracy(loaded, (x, y), attacks.pgd, batch_size=8, **kw)
    assert a == b == c


def test_joint_attack_scored_at_perturbed_weights(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    x = rng.normal(size=(12, 6)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    kw = dict(eps_x=0.2, eps_w=0.05, steps=10, step_size_x=0.05,
              step_size_w=0.01)  # fmt: skip
    acc = robust_accuracy(
        model, (x, y), attacks.joint_pgd, batch_size=12, progress=False,
        attack_labels="true", **kw,
    )  # fmt: skip
    xa, d = attacks.joint_pgd(model, x, y, **kw)
    logits = perturb.perturbed_call(model, xa, d).numpy()
    assert acc == pytest.approx(np.mean(np.argmax(logits, 1) == y))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "`batch_size` must be an integer >= 1"),
        (dict(attack_labels="gold"), "`attack_labels` must be one of"),
        (dict(data=np.zeros((3, 2))), "`data` must be a tuple"),
        (dict(data=(np.zeros((3, 2)), np.zeros(2))), "same number"),
    ],
)
def test_bad_input(kwargs, match):
    model = linear_model(W, [0.0, 0.0])
    args = dict(data=_points(), batch_size=2, attack_labels="predicted")
    args.update(kwargs)
    data = args.pop("data")
    with pytest.raises(ValueError, match=match):
        robust_accuracy(model, data, None, progress=False, **args)
