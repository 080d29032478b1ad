"""Smoke runs of every experiment script, resume, shards and merge.

The scripts run in subprocesses (absl flags are process-global); the sweep
library runs in-process on tiny budgets of the bundled MNIST or tfds mock
data.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from nsr_tf import sweep
from nsr_tf.sweep import figures
from nsr_tf.sweep import runner
from nsr_tf.sweep import store
from tests._sweep_helpers import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = ("mlp1:erm", "mlp1:fgm_l2")
ERM = "mnist/mlp1/erm"


def _script(module, *args, wrapper=None, timeout=600):
    code = (
        "import sys\n"
        "from absl import app\n"
        f"import {module} as script\n"
        f"sys.argv = [{module!r}] + {list(args)!r}\n"
    )
    if wrapper:
        code += wrapper + "\n"
    code += (
        "app.run(script.main)\n"
        if not wrapper
        else "    app.run(script.main)\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr[-4000:])
    return result.stdout


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("table1"))
    sweep.run_table1("mnist", out, TINY, only=ROWS, verbose=0)
    return out


def _table(out):
    return store.read_json(os.path.join(out, "table1_mnist.json"))["rows"]


def test_sweep_writes_records_models_logs_and_tables(sweep_dir):
    for beta in ("inf", "2"):
        run = store.run_dir(sweep_dir, f"mnist/mlp1/fgm_l2/beta_{beta}")
        record = store.read_json(os.path.join(run, "record.json"))
        assert record["config"]["mode"] == "fgm"
        assert record["attack"]["eps"] == pytest.approx(0.05 * record["c2"])
        assert 0.0 <= record["metrics"]["val_acc"] <= 1.0
        assert os.path.exists(
            os.path.join(run, "saved_model", "saved_model.pb")
        )
        assert os.path.exists(os.path.join(run, "model.keras"))
        assert os.listdir(os.path.join(run, "logs"))
    for ext in ("md", "csv", "json"):
        assert os.path.exists(os.path.join(sweep_dir, f"table1_mnist.{ext}"))
    rows = {(r["architecture"], r["training"]): r for r in _table(sweep_dir)}
    assert rows[("1-layer MLP", "FGM l2")]["betas_done"] == 2
    assert rows[("2-layer MLP", "ERM")]["betas_done"] == 0


def test_erm_accuracy_is_the_clean_accuracy_of_the_exported_model(sweep_dir):
    from nsr_tf import data
    from nsr_tf import export

    run = store.run_dir(sweep_dir, "mnist/mlp1/erm/beta_inf")
    record = store.read_json(os.path.join(run, "record.json"))
    loaded = export.load_attack_ready(os.path.join(run, "saved_model"))
    x, y = data.load("mnist", "validation")
    acc = np.mean(np.argmax(loaded(x).numpy(), axis=1) == y)
    assert acc == pytest.approx(record["metrics"]["val_acc"], abs=1e-9)


def test_interrupted_shard_resumes_and_shards_merge_into_one_table(
    sweep_dir, tmp_path, monkeypatch
):
    """Shard 0 runs whole; shard 1 crashes after one run and is resumed.

    The resumed shard redoes nothing that was finished, and the two shards
    merge into the table of the single uninterrupted sweep (same seeds).
    """
    shards = [str(tmp_path / f"s{i}") for i in range(2)]
    sweep.run_table1(
        "mnist",
        shards[0],
        TINY,
        only=ROWS,
        shard_index=0,
        num_shards=2,
        verbose=0,
    )
    real = runner.run_one
    calls = []

    def crash_on_second(row, beta, *args, **kwargs):
        calls.append(runner.run_key(row, beta))
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash")
        return real(row, beta, *args, **kwargs)

    monkeypatch.setattr(runner, "run_one", crash_on_second)
    run1 = dict(shard_index=1, num_shards=2, verbose=0, only=ROWS)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_table1("mnist", shards[1], TINY, **run1)
    first, crashed = calls
    assert store.is_done(shards[1], first)
    assert not store.is_done(shards[1], crashed)
    stamp = os.path.getmtime(store.record_path(shards[1], first))
    calls.clear()
    sweep.run_table1("mnist", shards[1], TINY, **run1)
    assert calls == [crashed]  # the finished run is not redone
    assert os.path.getmtime(store.record_path(shards[1], first)) == stamp
    merged = str(tmp_path / "merged")
    _script(
        "experiments.table1",
        "--dataset=mnist",
        "--merge_only",
        f"--merge_dirs={','.join(shards)}",
        f"--output_dir={merged}",
    )
    for a, b in zip(_table(merged), _table(sweep_dir), strict=True):
        assert a["betas_done"] == b["betas_done"]
        assert a["selected_beta"] == b["selected_beta"]
        for k in ("train_acc", "test_acc", "train_acc_sn", "test_acc_sn"):
            assert a[k] == pytest.approx(b[k], abs=0.011), (a, b)
    # The merge records its own command and leaves a sweep's flags alone.
    assert "--merge_only" in open(f"{merged}/flags_table1_merge.txt").read()
    assert not os.path.exists(f"{merged}/flags_table1.txt")


def test_table1_script_smoke(tmp_path):
    out = str(tmp_path)
    stdout = _script(
        "experiments.table1",
        "--dataset=mnist",
        "--preset=smoke",
        "--rows=mlp2:wrm",
        "--betas=inf",
        "--train_examples=256",
        "--eval_examples=100",
        "--verbose=0",
        f"--output_dir={out}",
    )
    assert "| 2-layer MLP | WRM |" in stdout
    assert len(store.read_records([out])) == 1
    flags_text = open(os.path.join(out, "flags_table1.txt")).read()
    assert "--dataset=mnist" in flags_text and "--rows=mlp2:wrm" in flags_text


def test_saved_model_evaluation_and_script(sweep_dir, tmp_path):
    from nsr_tf import data
    from nsr_tf.sweep import saved_eval

    saved = os.path.join(
        store.run_dir(sweep_dir, "mnist/mlp1/erm/beta_inf"), "saved_model"
    )
    x, y = data.load("mnist", "test")
    clean = saved_eval.evaluate_saved_model(
        saved, x[:200], y[:200], attack="none"
    )
    pgd = saved_eval.evaluate_saved_model(
        saved, x[:200], y[:200], attack="pgd", eps=1.0, norm=2.0, steps=5
    )
    assert pgd["step_size"] == pytest.approx(0.4)
    assert 0 <= pgd["accuracy"] < clean["accuracy"]
    margin = saved_eval.evaluate_saved_model(
        saved, x[:200], y[:200], attack="pgd", eps=1.0, norm=2.0, steps=5,
        loss="margin",
    )  # fmt: skip
    assert margin["loss"] == "margin"
    assert 0 <= margin["accuracy"] < clean["accuracy"]
    with pytest.raises(ValueError, match="loss='hinge'"):
        saved_eval.evaluate_saved_model(
            saved, x[:10], y[:10], attack="pgd", eps=1.0, loss="hinge"
        )
    out, png = str(tmp_path / "r.json"), str(tmp_path / "s.png")
    _script(
        "experiments.evaluate",
        f"--saved_model={saved}",
        "--dataset=mnist",
        "--examples=100",
        "--attack=joint",
        "--steps=3",
        "--eps_x=0,0.1",
        "--eps_w=0,0.002",
        f"--surface_png={png}",
        f"--output_json={out}",
    )
    result = json.load(open(out))
    acc = np.asarray(result["accuracy"])
    assert acc.shape == (2, 2) and acc[1, 1] <= acc[0, 0]
    assert 0.0 <= result["auc"] <= 1.0
    assert os.path.getsize(png) > 1000


def test_figures_script(sweep_dir, tmp_path):
    random_dir = str(tmp_path / "random")
    sweep.run_table1(
        "mnist",
        random_dir,
        TINY,
        only=("mlp1:erm",),
        verbose=0,
        random_labels=True,
    )
    rec = store.read_records([random_dir])[0]
    assert rec["random_labels"] is True and rec["metrics"]["val_acc"] < 0.3
    out = str(tmp_path / "figs")
    _script(
        "experiments.figures",
        f"--runs_dir={sweep_dir}",
        f"--random_runs_dir={random_dir}",
        "--dataset=mnist",
        "--arch=mlp1",
        "--beta=2",
        "--fig3_betas=inf,2",
        "--fig5_attack=fgm_l2",
        "--fig5_eps=0,2",
        "--examples=100",
        f"--output_dir={out}",
    )
    for n in ("2a", "2b", "3", "4", "5", "6"):
        assert os.path.getsize(os.path.join(out, f"fig{n}.png")) > 1000
    # A beta that was not run is an error, not an empty figure; "2.0"
    # names the run recorded as "2".
    assert [r["beta"] for r in figures.runs_at(sweep_dir, ERM, ["2.0"])] == [
        "2"
    ]
    with pytest.raises(ValueError, match=r"betas=\['1.3'\]"):
        figures.runs_at(sweep_dir, ERM, ["1.3"])


def test_fig3_margins_of_an_adversarial_row_are_taken_under_its_attack(
    sweep_dir,
):
    from nsr_tf import bounds
    from nsr_tf import data
    from nsr_tf.sweep import figure_data

    x, y = (a[:200] for a in data.load("mnist", "train"))
    record = figures.runs_at(sweep_dir, "mnist/mlp1/fgm_l2", ["2"])[0]
    model = figures.load_run_model(sweep_dir, record)
    got = figures.normalized_margins(model, record, x, y)
    eps = record["attack"]["eps"]
    # Independent reference: FGM l2 by hand on the predicted labels.
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logits = model(xt, training=False)
        loss = tf.reduce_sum(
            keras.losses.sparse_categorical_crossentropy(
                tf.argmax(logits, 1), logits, from_logits=True
            )
        )
    g = tape.gradient(loss, xt).numpy().reshape(len(x), -1)
    step = eps * g / np.linalg.norm(g, axis=1, keepdims=True)
    x_adv = x + step.reshape(x.shape)
    z = model.predict(x_adv, verbose=0)
    true = z[np.arange(len(y)), y]
    z[np.arange(len(y)), y] = -np.inf
    phi = figure_data.fig3_normalizer(
        *bounds.layer_norms(model),
        adversarial=True,
        factors=figure_data.fig3_factors(model),
    )
    np.testing.assert_allclose(
        got, (true - z.max(1)) / phi, rtol=1e-4, atol=1e-6
    )
    clean = figures.normalized_margins(
        model, {**record, "attack": {"mode": "erm"}}, x, y
    )
    assert np.mean(got) < np.mean(clean)


def test_table2_script_smoke(tmp_path):
    stdout = _script(
        "experiments.table2",
        "--dataset=mnist",
        "--rows=mlp1:erm",
        "--epochs=1",
        "--train_examples=256",
        f"--output_dir={tmp_path}",
    )
    assert "| 1-layer MLP | ERM |" in stdout
    rec = store.read_json(
        str(tmp_path / "table2" / "mnist" / "mlp1" / "erm.json")
    )
    assert rec["ratio"] == pytest.approx(
        rec["sn_seconds"] / rec["no_sn_seconds"]
    )
    assert rec["paper_ratio"] == 1.60


def test_table3_script_smoke_on_mock_cifar10(tmp_path):
    wrapper = (
        "import tensorflow_datasets as tfds\n"
        "with tfds.testing.mock_data(num_examples=600):"
    )
    stdout = _script(
        "experiments.table3",
        "--rows=alexnet:erm",
        "--source=tfds",
        "--epochs=1",
        "--train_examples=128",
        "--eval_examples=50",
        f"--output_dir={tmp_path}",
        wrapper=wrapper,
    )
    assert "| AlexNet | ERM |" in stdout
    rec = store.read_json(
        str(tmp_path / "table3" / "cifar10" / "alexnet" / "erm.json")
    )
    assert (
        len(rec["operator_conv_sigmas"]) == len(rec["kernel_conv_sigmas"]) == 2
    )
    # beta = 2.0 (Table 1's selected beta): the operator method keeps the
    # true conv norm at or below it.
    assert max(rec["operator_conv_sigmas"]) <= 2.0 * 1.05


def test_nsr_fig1_script_smoke(tmp_path):
    stdout = _script(
        "experiments.nsr_fig1",
        "--epochs=1",
        "--train_examples=200",
        "--test_examples=50",
        "--attack_steps=3",
        "--eps_x=0,0.1",
        "--eps_w=0,0.002",
        f"--output_dir={tmp_path}",
    )
    for label in (
        "Standard",
        "Weight Perturb",
        "Weight Perturb (printed scale)",
        "AT",
        "AT (ε=0.03)",
        "AT+β-1",
        "AT+β-2",
        "JIWP",
    ):
        assert f"| {label} |" in stdout
    assert "AUC ordering, measured:" in stdout
    assert "AUC ordering, paper:" in stdout
    payload = store.read_json(str(tmp_path / "nsr_fig1.json"))
    records = payload["records"]
    assert all(r["init"] == "warm_start" for r in records.values())
    assert records["weight_perturb"]["config"]["penalty_scale"] == 0.02
    assert records["weight_perturb_printed"]["config"]["penalty_scale"] == 1
    assert records["at"]["config"]["rand_init"] is True
    assert records["at"]["attack_clip"] == [0.0, 1.0]
    assert records["standard"]["test_examples"] == 50
    for name in payload["records"]:
        assert os.path.getsize(str(tmp_path / f"surface_{name}.png")) > 1000


def _run_script(module, *args):
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


def _snapshot(directory):
    return {
        os.path.join(root, name): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(directory)
        for name in names
    }


@pytest.mark.parametrize(
    "module, args, match",
    [
        ("experiments.table1", ["--betas=inf,x"], "`--betas` must list betas"),
        ("experiments.table1", ["--rows=mlp9:erm"], "`rows` must name rows"),
        (
            "experiments.table1",
            ["--preset=elunet", "--rows=mlp1:erm"],
            "must plan at least one mnist run",
        ),
        # The finished sweep below was made with the smoke preset.
        ("experiments.table1", ["--preset=cpu"], f"Run {ERM}/beta_inf"),
        ("experiments.table2", ["--rows=x:y"], "`rows` must name rows"),
        ("experiments.nsr_fig1", ["--eps_x=0,a"], "`--eps_x` must be"),
    ],
)
def test_bad_flags_leave_a_finished_directory_untouched(
    tmp_path, module, args, match
):
    out = str(tmp_path)
    smoke = sweep.get_preset("smoke")
    shared = runner.sweep_settings(
        "mnist", smoke, data_source="bundled:mnist", random_labels=False, seed=0
    )
    row = sweep.Row("mnist", "mlp1", "erm")
    record = store.with_settings(
        {"run_key": f"{ERM}/beta_inf", "row_key": ERM, "beta": "inf"},
        runner.run_settings(row, float("inf"), smoke, shared),
    )
    store.write_json_atomic(store.record_path(out, f"{ERM}/beta_inf"), record)
    for script in ("table1", "table2", "nsr_fig1"):
        with open(os.path.join(out, f"flags_{script}.txt"), "w") as f:
            f.write("--finished\n")
    before = _snapshot(out)
    extra = {
        "experiments.table1": ["--dataset=mnist", "--preset=smoke"],
        "experiments.table2": ["--dataset=mnist"],
    }.get(module, [])
    code, output = _run_script(module, *extra, *args, f"--output_dir={out}")
    assert code != 0
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "FATAL" in line]
    assert len(errors) == 1 and match in errors[0], output
    assert _snapshot(out) == before
