"""nsr_tf.checks and its use at the public entry points."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from layers import SNConv2D
from layers import SNDense
from nsr_tf import attacks
from nsr_tf import checks
from nsr_tf import evaluation
from nsr_tf import models
from nsr_tf.training import RobustConfig
from tests._attack_models import linear_model
from tests._attack_models import relu_mlp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
W = np.array([[1.0, -1.0, 0.0], [-2.0, 0.5, 1.0]])  # 2 inputs, 3 classes
X = np.array([[0.1, 0.2], [0.3, -0.4]], np.float32)

# ------------------------------------------------------------- the checks


@pytest.mark.parametrize(
    "value, match",
    [
        (-0.1, r"`eps` must be >= 0. Received: eps=-0.1"),
        (math.nan, r"`eps` must be >= 0. Received: eps=nan"),
        (math.inf, r"`eps` must be finite. Received: eps=inf"),
        ("0.1", r"`eps` must be a number >= 0. Received: eps='0.1'"),
        (True, r"`eps` must be a number >= 0. Received: eps=True"),
        (None, r"`eps` must be a number >= 0. Received: eps=None"),
        (np.array([0.1, -1.0]), r"`eps` must be >= 0"),
    ],
)
def test_nonnegative_rejects(value, match):
    with pytest.raises(ValueError, match=match):
        checks.check_nonnegative("eps", value)


def test_number_checks_accept_and_convert():
    assert checks.check_nonnegative("eps", 0) == 0.0
    assert isinstance(checks.check_nonnegative("eps", np.float32(0.5)), float)
    assert checks.check_nonnegative("x", None, allow_none=True) is None
    assert checks.check_positive("beta", math.inf, finite=False) == math.inf
    arr = np.array([0.0, 0.2])
    assert checks.check_nonnegative("eps", arr) is arr
    with pytest.raises(ValueError, match=r"`gamma` must be > 0"):
        checks.check_positive("gamma", 0.0)
    assert checks.check_integer("steps", np.int64(3)) == 3
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(ValueError, match="`steps` must be an integer"):
            checks.check_integer("steps", bad)


@pytest.mark.parametrize(
    "norm, expected",
    [(2, 2.0), ("l2", 2.0), (np.inf, math.inf), (" LINF ", math.inf)],
)
def test_parse_norm(norm, expected):
    assert checks.parse_norm(norm) == expected


@pytest.mark.parametrize("norm", [1, "l1", True, None, "2.5"])
def test_parse_norm_rejects(norm):
    with pytest.raises(ValueError, match="`norm` must be 2 or inf"):
        checks.parse_norm(norm)


@pytest.mark.parametrize(
    "y, expected",
    [
        ([2, 0], [2, 0]),
        ([2.0, 1.0], [2, 1]),
        ([[2], [1]], [2, 1]),
        ([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], [2, 0]),
    ],
)
def test_class_indices(y, expected):
    out = checks.class_indices(y, 3)
    assert out.dtype == tf.int64
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize(
    "y, match",
    [
        ([0.5, 1.0], r"integer class indices. Received: y\[0\]=0.5"),
        ([1, -1], r"in \[0, 3\). Received: y\[1\]=-1"),
        ([1, 3], r"in \[0, 3\). Received: y\[1\]=3"),
        (["a", "b"], "`y` must hold class indices"),
        (np.zeros((2, 1, 1)), r"y.shape=\(2, 1, 1\)"),
    ],
)
def test_class_indices_rejects(y, match):
    with pytest.raises(ValueError, match=match):
        checks.class_indices(y, 3)


# ---------------------------------------------- bad budgets at entry points


def _pgd(eps):
    attacks.pgd(linear_model(W, [0, 0, 0]), X, eps, norm=2, steps=2,
                step_size=0.1)  # fmt: skip


def _fgm(eps):
    attacks.fgm(linear_model(W, [0, 0, 0]), X, eps, norm=np.inf)


def _joint(eps):
    model, _ = relu_mlp(np.random.default_rng(0), dtype="float32")
    attacks.joint_pgd(model, np.zeros((2, 6), np.float32), eps_x=eps,
                      eps_w=0.01, steps=1)  # fmt: skip


def _evaluation(eps):
    evaluation.robust_accuracy(
        linear_model(W, [0, 0, 0]), (X, [0, 1]), attacks.fgm, eps=eps,
        norm=2, progress=False,
    )  # fmt: skip


def _config(eps):
    RobustConfig(mode="pgm", eps=eps)


@pytest.mark.parametrize("call", [_pgd, _fgm, _joint, _evaluation, _config])
@pytest.mark.parametrize("eps", [math.inf, "0.1", True])
def test_non_numbers_and_inf_budgets_are_rejected(call, eps):
    with pytest.raises(ValueError, match=r"`eps(_x)?` must be"):
        call(eps)


@pytest.mark.parametrize(
    "build",
    [
        lambda beta: SNDense(3, beta=beta),
        lambda beta: SNConv2D(3, 3, beta=beta),
        lambda beta: models.build("mlp1", beta=beta, input_shape=(4, 4, 1)),
    ],
)
@pytest.mark.parametrize("beta", ["2", True])
def test_beta_must_be_a_number(build, beta):
    with pytest.raises(ValueError, match="`beta` must be"):
        build(beta)


# ------------------------------------------------------ labels at entry points


@pytest.mark.parametrize(
    "y, match",
    [
        ([0.5, 1.0], r"`y` must hold integer class indices.*y\[0\]=0.5"),
        ([0, 3], r"`y` must hold class indices in \[0, 3\).*y\[1\]=3"),
        ([-1, 0], r"`y` must hold class indices (>= 0|in \[0, 3\)).*y\[0\]=-1"),
    ],
)
@pytest.mark.parametrize("entry", ["pgd", "joint", "evaluation"])
def test_bad_labels_raise_value_errors_naming_y(entry, y, match):
    model = linear_model(W, [0, 0, 0])
    with pytest.raises(ValueError, match=match):
        if entry == "pgd":
            attacks.pgd(model, X, 0.1, norm=2, steps=1, step_size=0.1, y=y)
        elif entry == "joint":
            attacks.joint_pgd(model, X, y, eps_x=0.1, eps_w=0.1, steps=1)
        else:
            evaluation.robust_accuracy(model, (X, y), None, progress=False)


def test_integer_valued_float_labels_equal_integer_labels():
    model = linear_model(W, [0, 0, 0])
    kw = dict(norm=2, steps=2, step_size=0.1)
    a = attacks.pgd(model, X, 0.1, y=[2.0, 1.0], **kw)
    b = attacks.pgd(model, X, 0.1, y=[2, 1], **kw)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


# --------------------------------------------------------------- progress


def test_surface_progress_is_one_labelled_line_per_point(capsys):
    model = linear_model(W, [0, 0, 0])
    evaluation.accuracy_surface(
        model, X, [0, 1], [0.0, 0.1], [0.0, 0.01], steps=1, progress=True
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "surface eps_x=0 eps_w=0 (1/4)",
        "surface eps_x=0 eps_w=0.01 (2/4)",
        "surface eps_x=0.1 eps_w=0 (3/4)",
        "surface eps_x=0.1 eps_w=0.01 (4/4)",
    ]


# --------------------------------------------------------------- the script


def test_evaluate_script_requires_a_positive_eps_for_pgd(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", "--dataset=mnist",
         f"--saved_model={tmp_path}", "--attack=pgd"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )  # fmt: skip
    assert result.returncode != 0
    assert "--eps must be a finite number > 0 for --attack=pgd" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
