"""Tests of the Table 1 sweep logic that need no training."""

import json
import math
import os

import pytest

from nsr_tf import reference
from nsr_tf import sweep
from nsr_tf.sweep import report
from nsr_tf.sweep import rows as rows_lib
from nsr_tf.sweep import runner
from nsr_tf.sweep import store
from nsr_tf.sweep import table1
from tests._sweep_helpers import record as _record


def test_paper_table_has_42_rows_and_every_winner_is_in_its_grid():
    table = reference.table1_rows()
    assert len(table) == 42
    assert {r["dataset"] for r in table} == {"cifar10", "mnist", "svhn"}
    for paper_row in table:
        row = rows_lib.Row(
            paper_row["dataset"], paper_row["arch"], paper_row["training"]
        )
        winner = rows_lib.parse_beta(str(paper_row["selected_beta"]))
        assert winner in row.beta_grid, row.key


@pytest.mark.parametrize(
    "dataset, n_rows", [("mnist", 12), ("cifar10", 26), ("svhn", 4)]
)
def test_rows_per_dataset(dataset, n_rows):
    assert len(sweep.table1_rows(dataset)) == n_rows


def test_attack_settings_follow_the_spec():
    c2 = 10.0
    fgm = sweep.attack_setting("mnist", "fgm_l2", c2)
    assert (fgm.mode, fgm.norm, fgm.eps) == ("fgm", 2.0, pytest.approx(0.5))
    pgm = sweep.attack_setting("cifar10", "pgm_linf", c2)
    assert (pgm.mode, pgm.norm, pgm.eps, pgm.steps) == (
        "pgm",
        math.inf,
        0.1,
        15,
    )
    assert sweep.attack_setting("mnist", "wrm", c2).gamma == pytest.approx(0.4)
    assert sweep.attack_setting("svhn", "wrm", c2).gamma == pytest.approx(0.02)
    assert sweep.attack_setting("svhn", "erm", c2).as_config_kwargs() == {
        "mode": "erm"
    }


def test_optimizers_and_epoch_caps():
    assert rows_lib.Row("mnist", "elunet", "erm").optimizer == "adam"
    assert rows_lib.Row("cifar10", "mlp1", "erm").optimizer == "adam"
    assert rows_lib.Row("cifar10", "alexnet", "wrm").optimizer == "momentum"
    assert rows_lib.Row("mnist", "elunet", "wrm").max_epochs == 25
    assert rows_lib.Row("mnist", "mlp1", "wrm").max_epochs is None


def test_shards_partition_the_plan():
    runs = sweep.plan("mnist", sweep.get_preset("paper"))
    assert len(runs) == 12 * len(rows_lib.MNIST_GRID)
    parts = [sweep.shard(runs, i, 3) for i in range(3)]
    assert sorted(map(str, sum(parts, []))) == sorted(map(str, runs))
    assert all(len(p) == len(runs) // 3 for p in parts)


def test_plan_restricts_rows_and_betas():
    preset = sweep.get_preset("smoke")
    runs = sweep.plan("mnist", preset, only=("mlp1:erm",))
    assert [(r.key, b) for r, b in runs] == [
        ("mnist/mlp1/erm", math.inf),
        ("mnist/mlp1/erm", 2.0),
    ]


def test_preset_optimizer_override():
    row = rows_lib.Row("mnist", "mlp1", "erm")
    assert row.optimizer == "adam"  # MNIST rows use Adam (spec §5)
    preset = sweep.get_preset("paper", optimizer="momentum", learning_rate=0.1)
    opt = runner.make_optimizer(
        runner.row_optimizer(row, preset), preset.learning_rate
    )
    assert type(opt).__name__ == "SGD"
    assert float(opt.learning_rate) == pytest.approx(0.1)
    assert float(opt.momentum) == pytest.approx(0.9)
    default = runner.make_optimizer(
        runner.row_optimizer(row, sweep.get_preset("paper"))
    )
    assert type(default).__name__ == "Adam"
    assert float(default.learning_rate) == pytest.approx(1e-3)
    assert float(default.epsilon) == pytest.approx(1e-8)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sweep.shard([], 0, 0), "num_shards=0"),
        (lambda: sweep.shard([], 2, 2), "shard_index=2"),
        (
            lambda: sweep.plan(
                "mnist", sweep.get_preset("smoke"), only=("x:y",)
            ),
            "rows=",
        ),
        (lambda: sweep.get_preset("huge"), "preset='huge'"),
        (lambda: rows_lib.parse_beta("-1"), "beta=-1"),
        (
            lambda: sweep.get_preset("smoke", optimizer="sgd"),
            "optimizer='sgd'",
        ),
        (
            lambda: sweep.get_preset("smoke", learning_rate=-1.0),
            "learning_rate=-1.0",
        ),
        (lambda: runner.make_optimizer("rmsprop"), "kind='rmsprop'"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_beta_selection_by_validation_ties_to_larger_beta():
    recs = [
        _record("mlp1", "erm", "inf", 0.90),
        _record("mlp1", "erm", "2", 0.95),
        _record("mlp1", "erm", "4", 0.95),
        _record("mlp1", "erm", "1", 0.80),
    ]
    assert report.select_beta(recs)["beta"] == "4"
    assert report.select_beta(recs[:1])["beta"] == "inf"
    assert report.select_beta([]) is None


def test_table_places_baseline_and_selected_beside_the_paper(tmp_path):
    out = str(tmp_path)
    for rec in (
        _record("mlp1", "erm", "inf", 0.9, train=1.0, test=0.97),
        _record("mlp1", "erm", "2", 0.95, train=0.99, test=0.98),
    ):
        store.write_json_atomic(store.record_path(out, rec["run_key"]), rec)
    table = sweep.write_table("mnist", out)
    row = next(r for r in table if r["architecture"] == "1-layer MLP")
    assert row["training"] == "ERM"
    assert (row["train_acc"], row["test_acc"]) == (1.0, 0.97)
    assert (row["train_acc_sn"], row["test_acc_sn"]) == (0.99, 0.98)
    assert row["selected_beta"] == "2" and row["betas_done"] == 2
    assert (row["paper_test_acc"], row["paper_selected_beta"]) == (0.98, "inf")
    text = open(os.path.join(out, "table1_mnist.md")).read()
    assert "| 1-layer MLP | ERM | 1.00 | 0.97 | 0.99 | 0.98 | 2 |" in text
    csv_lines = open(os.path.join(out, "table1_mnist.csv")).read().splitlines()
    assert csv_lines[0].startswith("architecture,training,train_acc")
    assert len(csv_lines) == 13
    payload = json.load(open(os.path.join(out, "table1_mnist.json")))
    assert len(payload["rows"]) == 12 and len(payload["runs"]) == 2
    runs = open(os.path.join(out, "table1_mnist_runs.md")).read()
    assert runs.splitlines()[4:6] == [
        "| 1-layer MLP ERM | 2 (selected) | – | 0.990 | 0.950 | 0.980 "
        "| – | – | – |",
        "| 1-layer MLP ERM | inf | – | 1.000 | 0.900 | 0.970 | – | – | – |",
    ]


def test_runs_markdown_gives_each_run_its_epochs_certificate_and_time():
    rec = _record("mlp2", "fgm_l2", "4", 0.91, train=0.93, test=0.905)
    rec.update(
        epochs_run=30,
        train_seconds=412.4,
        certified={
            "eps": [0.1, 0.2, 0.4, 0.8],
            "accuracy": [0.9, 0.7, 0.2502, 0.0],
            "lipschitz": 1234.5,
        },
    )
    text = report.runs_markdown("mnist", [rec])
    assert (
        "| 2-layer MLP FGM l2 | 4 (selected) | 30 | 0.930 | 0.910 | 0.905 "
        "| 0.250 | 1,234 | 412 |"
    ) in text


def test_merge_reads_other_shard_directories(tmp_path):
    a, b, merged = (str(tmp_path / n) for n in ("a", "b", "merged"))
    rec_a = _record("mlp2", "wrm", "inf", 0.5)
    rec_b = _record("mlp2", "wrm", "16", 0.7)
    store.write_json_atomic(store.record_path(a, rec_a["run_key"]), rec_a)
    store.write_json_atomic(store.record_path(b, rec_b["run_key"]), rec_b)
    table = sweep.write_table("mnist", merged, input_dirs=(a, b))
    row = next(
        r
        for r in table
        if r["architecture"] == "2-layer MLP" and r["training"] == "WRM"
    )
    assert row["selected_beta"] == "16" and row["betas_done"] == 2


def test_atomic_write_leaves_no_partial_file(tmp_path):
    path = str(tmp_path / "r" / "record.json")

    class Unserializable:
        pass

    with pytest.raises(TypeError):
        store.write_json_atomic(path, {"x": Unserializable()})
    assert not os.path.exists(path)
    assert os.listdir(tmp_path / "r") == []
    store.write_json_atomic(path, {"x": 1})
    assert json.load(open(path)) == {"x": 1}


def test_time_fits_alternates_and_trains_each_model_fully():
    import keras
    import numpy as np

    from nsr_tf.sweep import timing

    rng = np.random.default_rng(0)
    x = rng.random((96, 4, 4, 1), dtype=np.float32)
    y = rng.integers(0, 10, 96)
    row = rows_lib.Row("mnist", "mlp1", "erm")
    robusts = []
    for _ in range(2):
        model = keras.Sequential(
            [
                keras.Input((4, 4, 1)),
                keras.layers.Flatten(),
                keras.layers.Dense(10),
            ]
        )
        robusts.append(timing._compiled(model, row, 1.0))
    seconds = timing.time_fits(robusts, x, y, epochs=2, batch_size=32)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    # One warm-up step, then 2 epochs of 3 batches each, for both models.
    assert [int(r.optimizer.iterations) for r in robusts] == [7, 7]


def test_mlp_preset_plans_the_issue_budget():
    preset = sweep.get_preset("mlp")
    runs = sweep.plan("mnist", preset)
    assert {r.arch for r, _ in runs} == {"mlp1", "mlp2"}
    by_row = {}
    for row, beta in runs:
        by_row.setdefault(row.training, set()).add((row.arch, beta))
    inf = float("inf")
    # the paper selected 16 (PGM) and 8 (WRM) for the 1-layer MLP
    assert {b for a, b in by_row["pgm_l2"] if a == "mlp1"} == {inf, 8.0, 16.0}
    assert {b for a, b in by_row["wrm"] if a == "mlp1"} == {inf, 4.0, 8.0}
    assert len(by_row["fgm_l2"]) == 12  # full grid, both MLPs
    assert [preset.epochs_for(t) for t in rows_lib.TRAININGS] == [
        200,
        30,
        200,
        20,
        200,
        20,
    ]
    assert preset.jit_compile
    # an explicit --epochs caps every training below its own cap
    assert sweep.get_preset("mlp", epochs=5).epochs_for("fgm_l2") == 5


def test_elunet_preset_plans_the_mnist_elunet_rows_at_25_epochs():
    preset = sweep.get_preset("elunet")
    runs = sweep.plan("mnist", preset)
    assert {r.arch for r, _ in runs} == {"elunet"}
    counts = {}
    for row, _ in runs:
        counts[row.training] = counts.get(row.training, 0) + 1
    assert counts == {"erm": 6, "fgm_l2": 6, "pgm_l2": 3, "wrm": 3}
    inf = float("inf")
    # the paper selected 4 for every adversarial ELU-Net row; 2 is below it
    assert {b for r, b in runs if r.training == "wrm"} == {inf, 4.0, 2.0}
    assert {runner.run_epochs(r, preset) for r, _ in runs} == {25}
    assert not preset.jit_compile
    assert sweep.plan("cifar10", preset) == []


@pytest.mark.parametrize(
    "training, passes",
    [("erm", 1), ("fgm_l2", 2), ("fgm_linf", 2), ("pgm_l2", 16), ("wrm", 16)],
)
def test_gradient_passes_per_training_step(training, passes):
    setting = rows_lib.attack_setting("mnist", training, 9.3)
    assert setting.gradient_passes == passes


def test_table1_tasks_cost_epochs_times_gradient_passes(tmp_path):
    preset = sweep.get_preset("mlp")
    runs = [
        (row, beta)
        for row, beta in sweep.plan("mnist", preset, only=("mlp1:erm",))
        + sweep.plan("mnist", preset, only=("mlp1:pgm_l2",))
        if math.isinf(beta)
    ]
    items = [(f"k{i}", f"r{i}.json", {}) for i in range(len(runs))]
    tasks = table1.table1_tasks(runs, items, str(tmp_path), preset, data={})
    assert [t.cost for t in tasks] == [200 * 1, 20 * 16]


def test_paper_neighbour_rule_at_the_grid_edge():
    # CIFAR-10 1-layer MLP PGM: the paper's 0.8 is the smallest of the grid
    row = rows_lib.Row("cifar10", "mlp1", "pgm_l2")
    assert rows_lib.row_betas(row, "paper_neighbour") == (
        float("inf"),
        0.8,
        1.0,
    )
    assert rows_lib.row_betas(row, "grid") == row.beta_grid


def test_preset_rejects_unknown_beta_rule():
    with pytest.raises(ValueError, match="betas_by_training"):
        sweep.Preset("x", epochs=1, betas_by_training=(("erm", "best"),))


# --- settings fingerprints, resume and corrupt records ----------------------
