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
from nsr_tf.sweep.engine import SweepFailedError


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


def _record(arch, training, beta, val, train=0.9, test=0.8):
    key = f"mnist/{arch}/{training}"
    return {
        "run_key": f"{key}/beta_{beta}",
        "row_key": key,
        "beta": beta,
        "metrics": {"train_acc": train, "val_acc": val, "test_acc": test},
    }


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

TINY = sweep.Preset(
    "tiny",
    epochs=1,
    batch_size=64,
    train_examples=256,
    eval_examples=200,
    early_stopping=False,
    betas=(math.inf,),
)
KEY = "mnist/mlp1/erm/beta_inf"


def _settings(preset=TINY, random_labels=False, data_source="bundled:mnist"):
    shared = runner.sweep_settings(
        "mnist",
        preset,
        data_source=data_source,
        random_labels=random_labels,
        seed=0,
    )
    row = rows_lib.Row("mnist", "mlp1", "erm")
    return runner.run_settings(row, math.inf, preset, shared)


def _finished(out, settings, key=KEY):
    record = store.with_settings(_record("mlp1", "erm", "inf", 0.9), settings)
    record["run_key"] = key
    store.write_json_atomic(store.record_path(out, key), record)
    return store.record_path(out, key)


def test_fingerprint_is_canonical_and_sensitive():
    a = {"b": (1, 2.5, math.inf), "a": {"y": None, "x": "s"}}
    b = {"a": {"x": "s", "y": None}, "b": [1, 2.5, math.inf]}
    assert store.fingerprint(a) == store.fingerprint(b)
    assert store.fingerprint(a) == store.fingerprint(
        store.canonical_settings(a)
    )
    for changed in ({**b, "b": [1, 2.5]}, {**b, "a": {"x": "s", "y": 0}}):
        assert store.fingerprint(changed) != store.fingerprint(a)
    assert store.fingerprint(_settings()) == store.fingerprint(_settings())
    assert store.fingerprint(_settings()) != store.fingerprint(
        _settings(random_labels=True)
    )


def test_record_status_and_reuse(tmp_path):
    out, settings = str(tmp_path), _settings()
    path = store.record_path(out, KEY)
    assert store.record_status(path, settings) == (store.MISSING, None)
    _finished(out, settings)
    status, record = store.record_status(path, settings)
    assert status == store.DONE and record["settings"]["run"]["beta"] == "inf"
    assert store.reuse_record(path, settings, name=KEY) == record
    other = _settings(sweep.get_preset("smoke"), random_labels=True)
    assert store.record_status(path, other)[0] == store.MISMATCH
    with pytest.raises(store.SettingsMismatchError) as err:
        store.reuse_record(path, other, name=KEY)
    message = str(err.value)
    assert KEY in message and path in message and "overwrite" in message
    assert "preset.train_examples: 256 (recorded) != 2048 (now)" in message
    assert "random_labels: False (recorded) != True (now)" in message
    assert "preset.eval_examples: 200 (recorded) != 1000 (now)" in message
    assert store.reuse_record(path, other, name=KEY, overwrite=True) is None
    assert not os.path.exists(path)


@pytest.mark.parametrize("content", ["", '{"run_key": "mnist/ml', "[1"])
def test_corrupt_record_is_set_aside_and_redone(tmp_path, content):
    path = tmp_path / "runs" / "record.json"
    path.parent.mkdir()
    path.write_text(content)
    assert store.record_status(str(path), {})[0] == store.CORRUPT
    with pytest.warns(UserWarning, match=f"{path}.*moved it to"):
        assert store.reuse_record(str(path), {}, name="r") is None
    assert not path.exists()
    (aside,) = os.listdir(path.parent)
    assert aside.startswith("record.json.corrupt-")
    assert (path.parent / aside).read_text() == content


def test_reading_records_names_a_corrupt_file(tmp_path):
    out = str(tmp_path)
    _finished(out, _settings())
    bad = store.record_path(out, "mnist/mlp1/erm/beta_2")
    os.makedirs(os.path.dirname(bad))
    open(bad, "w").close()
    with pytest.warns(UserWarning, match=f"{bad} is not valid JSON"):
        records = store.read_records([out])
    assert [r["run_key"] for r in records] == [KEY]
    with pytest.raises(store.CorruptRecordError, match=bad):
        store.read_json(bad)


def test_table_refuses_records_of_different_sweeps(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    _finished(a, _settings())
    smoke = _settings(sweep.get_preset("smoke"))
    _finished(b, smoke, key="mnist/mlp1/erm/beta_2")
    with pytest.raises(
        store.SettingsMismatchError,
        match="mix records.*train_examples: 2048 .first. != 256 .second.",
    ):
        sweep.write_table("mnist", a, input_dirs=(b,))
    # Two copies of one run with different settings are refused too.
    _finished(b, smoke)
    with pytest.raises(store.SettingsMismatchError, match=f"Run {KEY} has"):
        store.read_records([a, b])
    # Shards of one sweep merge.
    _finished(b, _settings(), key="mnist/mlp1/erm/beta_2")
    os.remove(store.record_path(b, KEY))
    table = sweep.write_table("mnist", str(tmp_path / "m"), input_dirs=(a, b))
    done = {(r["architecture"], r["training"]): r["betas_done"] for r in table}
    assert done[("1-layer MLP", "ERM")] == 2


class _Trained(Exception):
    pass


def _trains():
    """The sweep trained a run (its failure is reported after the sweep)."""
    return pytest.raises(SweepFailedError, match="_Trained")


@pytest.fixture
def no_training(monkeypatch):
    """Running a run's training raises _Trained: nothing trains for real."""

    def build(*args, **kwargs):
        raise _Trained()

    monkeypatch.setattr(runner.models, "build", build)


def _snapshot(directory):
    """Every file below ``directory`` and its bytes."""
    return {
        os.path.join(root, name): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(directory)
        for name in names
    }


def _sweep(out, **kwargs):
    return sweep.run_table1(
        "mnist", out, TINY, only=("mlp1:erm",), verbose=0, **kwargs
    )


def test_resume_reuses_only_records_of_the_same_settings(tmp_path, no_training):
    out = str(tmp_path)
    path = _finished(out, _settings())
    rows = _sweep(out)  # reused: nothing trained
    assert sum(r["betas_done"] for r in rows) == 1
    # The issue's case: a smoke sweep's directory rerun with other settings.
    _finished(out, _settings(sweep.get_preset("smoke")))
    files = _snapshot(out)
    with pytest.raises(
        store.SettingsMismatchError, match=f"Run {KEY} .*train_examples"
    ):
        _sweep(out, random_labels=True)
    assert _snapshot(out) == files
    with _trains():
        _sweep(out, overwrite=True)
    assert not os.path.exists(path)


def test_resume_redoes_a_corrupt_record(tmp_path, no_training):
    out = str(tmp_path)
    path = _finished(out, _settings())
    open(path, "w").write('{"run_key": ')
    with pytest.warns(UserWarning, match=path), _trains():
        _sweep(out)
    assert not os.path.exists(path)


def test_warm_start_model_is_reused_only_for_its_settings(
    tmp_path, monkeypatch
):
    import keras

    from nsr_tf.sweep import nsr
    from nsr_tf.sweep import nsr_train

    trained = []

    def fake_train(config, x, y, budget, epochs, seed, init_path, probe):
        trained.append(seed)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        return model, {}, None

    monkeypatch.setattr(nsr_train, "train", fake_train)
    budget = nsr.NSRBudget(epochs=1)
    arrays = ([[0.0, 0.0]], [0])
    out = str(tmp_path)
    path = nsr.warm_start_path(arrays, budget, out, 0, data_source="a")
    assert os.path.exists(path) and trained == [0]
    record = store.read_json(os.path.join(out, "warm_start", "record.json"))
    assert record["fingerprint"] == store.fingerprint(
        nsr.warm_start_settings(budget, seed=0, data_source="a")
    )
    nsr.warm_start_path(arrays, budget, out, 0, data_source="a")
    assert trained == [0]  # reused
    with pytest.raises(store.SettingsMismatchError, match="warm_start"):
        nsr.warm_start_path(arrays, budget, out, 1, data_source="a")
    nsr.warm_start_path(arrays, budget, out, 1, data_source="a", overwrite=True)
    assert trained == [0, 1]
    # A model without its record (cut off before the record was written)
    # is trained again.
    os.remove(os.path.join(out, "warm_start", "record.json"))
    nsr.warm_start_path(arrays, budget, out, 1, data_source="a")
    assert trained == [0, 1, 1]
