"""Certificates in the sweeps: records, report column, figure overlay."""

import keras
import numpy as np
import pytest

from nsr_tf.evaluation import plot_surface
from nsr_tf.sweep import certified
from nsr_tf.sweep import nsr
from nsr_tf.sweep import rows as rows_lib


def test_plot_surface_overlays_certified(tmp_path):
    acc = np.linspace(1, 0, 9).reshape(3, 3)
    grid = [0.0, 0.5, 1.0]
    path = plot_surface(acc, grid, grid, str(tmp_path / "s.png"),
                        certified=acc * 0.5)  # fmt: skip
    assert (tmp_path / "s.png").stat().st_size > 0 and path
    with pytest.raises(ValueError, match="certified"):
        plot_surface(acc, grid, grid, str(tmp_path / "t.png"),
                     certified=np.zeros((2, 3)))  # fmt: skip


def test_run_l2_eps_uses_own_or_pgm_budget():
    own = rows_lib.attack_setting("mnist", "fgm_l2", 10.0)
    assert certified.run_l2_eps("mnist", own, 10.0) == own.eps
    pgm = rows_lib.attack_setting("mnist", "pgm_l2", 10.0)
    for training in ("erm", "wrm", "pgm_linf"):
        setting = rows_lib.attack_setting("mnist", training, 10.0)
        assert certified.run_l2_eps("mnist", setting, 10.0) == pgm.eps


def test_certified_record_and_unsupported_model(rng):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
         keras.layers.Dense(2)]
    )  # fmt: skip
    x = rng.normal(size=(50, 4)).astype("float32")
    y = rng.integers(0, 2, 50)
    rec = certified.certified_record(model, x, y, 0.1)
    assert rec["eps"] == [f * 0.1 for f in certified.EPS_FACTORS]
    assert np.all(np.diff(rec["accuracy"]) <= 0)
    assert certified.at_run_eps({"certified": rec}) == rec["accuracy"][2]
    bad = keras.Sequential(
        [keras.Input((4,)), keras.layers.BatchNormalization(),
         keras.layers.Dense(2)]
    )  # fmt: skip
    rec = certified.certified_record(bad, x, y, 0.1)
    assert "BatchNormalization" in rec["error"]
    assert certified.at_run_eps({"certified": rec}) is None
    assert certified.at_run_eps({}) is None


def test_nsr_auc_table_has_certified_column():
    rec = {
        "clean_test_acc": 0.9,
        "auc": 0.5,
        "certified_auc": 0.1,
        "config": {"mode": "erm"},
        "init": "scratch",
        "epochs": 1,
        "weight_only_acc": 0.5,
    }
    table = nsr.auc_table({"standard": rec, "at": dict(rec, auc=0.6)})
    assert "certified AUC" in table and "| 0.100 |" in table
