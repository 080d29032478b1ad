"""Tests for nsr_tf.evaluation.surface: AUC, surfaces and the plot."""

import numpy as np
import pytest

from nsr_tf import attacks
from nsr_tf.evaluation import accuracy_surface
from nsr_tf.evaluation import plot_surface
from nsr_tf.evaluation import robust_accuracy
from nsr_tf.evaluation import surface_auc
from tests._attack_models import relu_mlp

EX = np.array([0.0, 0.1, 0.4, 1.0])
EW = np.array([0.0, 0.5, 2.0])


def test_auc_of_constant_and_bilinear_surfaces_is_exact():
    np.testing.assert_allclose(
        surface_auc(np.full((4, 3), 0.7), EX, EW), 0.7, atol=1e-12
    )
    # f = 1 - ex / 2 - ew / 4 is bilinear, so the trapezoid rule is exact;
    # its mean over [0, 1] x [0, 2] is 1 - 0.25 - 0.25 = 0.5.
    f = 1 - EX[:, None] / 2 - EW[None, :] / 4
    np.testing.assert_allclose(surface_auc(f, EX, EW), 0.5, atol=1e-12)


def test_surface_on_tiny_mlp(rng):
    model, _ = relu_mlp(rng, dtype="float32")
    x = rng.normal(size=(40, 6)).astype(np.float32)
    y = np.argmax(model(x).numpy(), 1)
    y[:5] = (y[:5] + 1) % 3
    kw = dict(steps=10, step_size_x=0.05, step_size_w=0.01)
    ex, ew = [0.0, 0.2, 0.5], [0.0, 0.05]
    acc, auc = accuracy_surface(model, x, y, ex, ew, batch_size=20, **kw)
    assert acc.shape == (3, 2)
    assert acc[0, 0] == pytest.approx(35 / 40)
    assert auc == pytest.approx(surface_auc(acc, ex, ew))
    assert 0 <= auc <= acc[0, 0]
    assert acc[-1, -1] < acc[0, 0]
    one = robust_accuracy(
        model, (x, y), attacks.joint_pgd, batch_size=20, progress=False,
        attack_labels="true", eps_x=0.5, eps_w=0.05, **kw,
    )  # fmt: skip
    assert acc[2, 1] == pytest.approx(one)
    acc_u, auc_u = accuracy_surface(
        model, x, y, ex, ew, batch_size=16, universal=True, **kw
    )
    assert acc_u[0, 0] == pytest.approx(35 / 40)
    assert auc_u == pytest.approx(surface_auc(acc_u, ex, ew))
    assert acc_u[-1, -1] < acc_u[0, 0]


def test_plot_surface_writes_png(tmp_path):
    acc = 1 - EX[:, None] / 2 - EW[None, :] / 4
    path = plot_surface(acc, EX, EW, str(tmp_path / "s.png"), title="AUC 0.5")
    with open(path, "rb") as f:
        head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "s.png").stat().st_size > 2000


@pytest.mark.parametrize(
    "ex, ew, acc_shape, match",
    [
        ([0.0], [0.0, 1.0], (1, 2), "`eps_x_grid` must be a 1-D"),
        ([0.0, 1.0], [1.0, 0.5], (2, 2), "`eps_w_grid` must be a 1-D"),
        ([-1.0, 1.0], [0.0, 1.0], (2, 2), "`eps_x_grid` must be a 1-D"),
        ([0.0, 1.0], [0.0, 1.0], (3, 2), "`acc` must have shape"),
    ],
)
def test_bad_grids(ex, ew, acc_shape, match):
    with pytest.raises(ValueError, match=match):
        surface_auc(np.zeros(acc_shape), ex, ew)
