"""Sweep engines: Ray gives the in-process records; faults; reruns; progress.

The Ray tests run a local Ray of 2 CPUs (CI installs Ray through the
``test`` extra) on the smallest sweep: 256 MNIST examples, one epoch, the
1-layer MLP at two betas.
"""

import dataclasses
import os

import pytest

from nsr_tf import sweep
from nsr_tf.sweep import engine as engine_lib
from nsr_tf.sweep import progress
from nsr_tf.sweep import store
from tests._sweep_helpers import TINY

ROWS = ("mlp1:erm",)
HELPERS = "tests._sweep_tasks"


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray")
    from nsr_tf.sweep import ray_engine

    ray_engine.start_local(2, log_to_driver=False)
    yield ray
    ray.shutdown()


def _ray_engine(**kwargs):
    from nsr_tf.sweep import ray_engine

    return ray_engine.RayEngine(cpus_per_run=1, poll_seconds=5, **kwargs)


def _task(tmp_path, key, fn, deps=(), **kwargs):
    record = str(tmp_path / key / "record.json")
    return engine_lib.Task(
        key, f"{HELPERS}:{fn}", dict(record=record, **kwargs), record, deps
    )


def _metrics(out):
    return {r["run_key"]: r["metrics"] for r in store.read_records([out])}


def test_ray_sweep_gives_the_in_process_records(ray, tmp_path):
    local, remote = str(tmp_path / "local"), str(tmp_path / "ray")
    sweep.run_table1("mnist", local, TINY, only=ROWS, verbose=0)
    sweep.run_table1(
        "mnist", remote, TINY, only=ROWS, verbose=0, engine=_ray_engine()
    )
    expected = _metrics(local)
    assert len(expected) == 2
    assert _metrics(remote) == expected  # exactly equal accuracies


def test_killed_worker_is_retried_and_the_sweep_completes(ray, tmp_path):
    marker = str(tmp_path / "attempted")
    tasks = [
        _task(tmp_path, "dies", "dies_once", marker=marker, value=1),
        _task(tmp_path, "fine", "write_record", value=2),
    ]
    result = _ray_engine(max_retries=2).run(tasks)
    assert os.path.exists(marker)  # the first attempt ran and died
    assert result.failed == {}
    assert result.done == {"dies": 1, "fine": 2}


def test_ray_runs_use_as_many_threads_as_cpus_they_declare(ray, tmp_path):
    tasks = [_task(tmp_path, "t", "tf_threads")]
    assert _ray_engine().run(tasks).done == {"t": 1}


def test_failing_run_is_reported_and_the_others_complete(ray, tmp_path):
    tasks = [
        _task(tmp_path, "bad", "always_fails"),
        _task(tmp_path, "after_bad", "write_record", deps=("bad",), value=0),
        _task(tmp_path, "good", "write_record", value=3),
    ]
    result = _ray_engine(max_retries=1).run(tasks)
    assert result.done == {"good": 3}
    assert "ValueError: this run always fails" in result.failed["bad"]
    assert result.failed["after_bad"] == "dependency 'bad' failed"
    with pytest.raises(engine_lib.SweepFailedError, match="always fails"):
        result.raise_on_failure()


@pytest.mark.parametrize("engine", ["inprocess", "ray"])
def test_rerun_skips_finished_runs(engine, tmp_path, request):
    log = str(tmp_path / "log")
    tasks = [
        _task(tmp_path, "a", "write_record", value=1, log=log),
        _task(tmp_path, "b", "write_record", deps=("a",), value=2, log=log),
    ]
    make = (
        engine_lib.InProcessEngine
        if engine == "inprocess"
        else lambda: (request.getfixturevalue("ray"), _ray_engine())[1]
    )
    assert make().run(tasks).done == {"a": 1, "b": 2}
    again = make().run(tasks)
    assert again.done == {} and again.skipped == ["a", "b"]
    assert open(log).read().split() == ["1", "2"]  # nothing ran twice


def test_in_process_engine_reports_failures_and_respects_dependencies(
    tmp_path,
):
    tasks = [
        _task(tmp_path, "bad", "always_fails"),
        _task(tmp_path, "child", "write_record", deps=("bad",), value=0),
        _task(tmp_path, "good", "write_record", value=5),
    ]
    result = engine_lib.InProcessEngine().run(tasks)
    assert result.done == {"good": 5}
    assert set(result.failed) == {"bad", "child"}
    assert not os.path.exists(tasks[1].record)


@pytest.mark.parametrize(
    "tasks, match",
    [
        ([("a", ()), ("a", ())], "unique keys"),
        ([("b", ("a",)), ("a", ())], "before its dependents"),
    ],
)
def test_bad_task_lists_are_rejected(tasks, match, tmp_path):
    tasks = [
        _task(tmp_path, key, "write_record", deps=deps, value=0)
        for key, deps in tasks
    ]
    with pytest.raises(ValueError, match=match):
        engine_lib.InProcessEngine().run(tasks)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cpus_per_run=0), "cpus_per_run"),
        (dict(gpus_per_run=-1.0), "gpus_per_run"),
        (dict(max_retries=-1), "max_retries"),
    ],
)
def test_bad_ray_engine_arguments_are_rejected(kwargs, match):
    from nsr_tf.sweep import ray_engine

    with pytest.raises(ValueError, match=match):
        ray_engine.RayEngine(**kwargs)


def test_unknown_engine_is_rejected():
    with pytest.raises(ValueError, match="Received: engine='dask'"):
        engine_lib.make_engine("dask")


@pytest.mark.parametrize(
    "seconds, text", [(0, "0:00:00"), (3723.4, "1:02:03"), (None, "?")]
)
def test_format_duration(seconds, text):
    assert progress.format_duration(seconds) == text


def test_progress_counts_and_eta_from_throughput():
    now = [100.0]
    tracker = progress.SweepProgress(
        dict.fromkeys("abcd", 1.0), clock=lambda: now[0]
    )
    assert tracker.eta() is None
    context = tracker.begin("a")
    assert (context.index, context.total) == (1, 4)
    now[0] += 60.0
    tracker.end("a")
    tracker.begin("b")
    # 1 run finished in 60 s, 3 left: 180 s.
    assert tracker.eta() == pytest.approx(180.0)
    assert tracker.summary() == (
        "1/4 finished, 1 running, 0 failed, elapsed 0:01:00 eta 0:03:00"
    )
    tracker.begin("c")  # one slot: c waits for it
    assert "1 running, 1 queued," in tracker.summary()


def test_eta_weighs_runs_by_their_cost():
    now = [0.0]
    tracker = progress.SweepProgress(
        {"erm": 1.0, "fgm": 2.0, "pgm": 16.0}, clock=lambda: now[0]
    )
    context = tracker.begin("erm")
    assert (context.cost, context.cost_after) == (1.0, 18.0)
    now[0] += 30.0
    tracker.end("erm")
    # 30 s per unit of cost, 18 units left.
    assert tracker.eta() == pytest.approx(540.0)
    context = tracker.begin("fgm")
    assert (context.cost, context.cost_after) == (2.0, 16.0)
    now[0] += 50.0
    tracker.end("fgm", error="boom")  # a failed run's cost is spent too
    assert tracker.eta() == pytest.approx(80.0 / 3.0 * 16.0)


def test_run_eta_extrapolates_its_time_per_cost_to_the_runs_after_it():
    context = progress.RunContext("k", 1, 3, 0.0, cost=2.0, cost_after=16.0)
    # 10 s left of a 100 s run of cost 2; 16 units after it: 800 s.
    assert context.sweep_eta(10.0, 100.0) == pytest.approx(810.0)
    two_slots = dataclasses.replace(context, slots=2)
    assert two_slots.sweep_eta(10.0, 100.0) == pytest.approx(410.0)


def test_task_cost_must_be_positive():
    with pytest.raises(ValueError, match="Received: cost=0"):
        engine_lib.Task("k", "m:f", {}, "r.json", cost=0)


def test_epoch_progress_logs_run_i_of_n_epoch_elapsed_and_eta():
    from nsr_tf.sweep.epoch_progress import EpochProgress

    now = [1000.0]
    callback = EpochProgress(10, clock=lambda: now[0])
    context = progress.RunContext("mnist/mlp1/erm/beta_2", 2, 3, 940.0)
    with progress.running(context):
        callback.on_train_begin()
        now[0] += 30.0  # 3 epochs of 10 s
        callback.on_epoch_end(2)
    # Run: 7 epochs left (70 s); sweep: that plus one 100 s run after it.
    assert callback.lines == [
        "[run 2/3] mnist/mlp1/erm/beta_2 epoch 3/10 elapsed 0:01:30 "
        "eta 0:02:50 (run eta 0:01:10)"
    ]
    assert progress.current() is None


@pytest.mark.parametrize(
    "env, flags, expected",
    [
        ({}, (None, None), (1, 0)),
        (
            {"SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_ID": "2"},
            (None, None),
            (4, 2),
        ),
        (
            {
                "SLURM_ARRAY_TASK_COUNT": "4",
                "SLURM_ARRAY_TASK_ID": "5",
                "SLURM_ARRAY_TASK_MIN": "3",
            },
            (None, None),
            (4, 2),
        ),
        (
            {"SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_ID": "2"},
            (2, 1),
            (2, 1),
        ),
    ],
)
def test_shards_default_to_the_slurm_array(env, flags, expected, monkeypatch):
    from experiments import _common

    for name in ("COUNT", "ID", "MIN"):
        monkeypatch.delenv(f"SLURM_ARRAY_TASK_{name}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _common.resolve_shards(*flags) == expected


@pytest.mark.parametrize(
    "env, match",
    [
        ({"SLURM_ARRAY_TASK_COUNT": "x"}, "SLURM_ARRAY_TASK_COUNT='x'"),
        (
            {"SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_ID": "2"},
            "Received: shard_index=2",
        ),
    ],
)
def test_bad_slurm_array_is_rejected(env, match, monkeypatch):
    from experiments import _common

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=match):
        _common.resolve_shards(None, None)


def test_a_run_is_finished_only_with_a_record_of_its_settings(tmp_path):
    path = str(tmp_path / "run" / "record.json")
    settings = {"epochs": 1, "beta": "inf"}
    store.write_json_atomic(path, store.with_settings({"x": 1}, settings))

    def finished(task_settings):
        task = engine_lib.Task(
            "run", f"{HELPERS}:write_record", {}, path, settings=task_settings
        )
        return engine_lib.is_finished(task)

    assert finished(settings)
    assert not finished({"epochs": 2, "beta": "inf"})  # other settings
    assert finished(None)  # without settings: the file exists
    with open(path, "w") as f:
        f.write('{"x": ')  # truncated
    assert not finished(settings)


@pytest.mark.parametrize("warm_start", [True, False])
def test_fig1_models_depend_on_the_warm_start_task(warm_start, tmp_path):
    from nsr_tf.sweep import nsr

    budget = nsr.NSRBudget(epochs=1, warm_start=warm_start)
    order = ["standard", "at", "jiwp"]
    tasks = nsr.fig1_tasks(
        order, str(tmp_path), budget, seed=3, data_source="bundled:mnist"
    )
    models = tasks[1:] if warm_start else tasks
    assert [t.key for t in models] == order
    for task in models:
        assert task.settings == nsr.model_settings(
            task.key, budget, seed=3, data_source="bundled:mnist"
        )
        assert task.deps == (("warm_start",) if warm_start else ())
    if warm_start:
        assert tasks[0].key == "warm_start"
        assert tasks[0].settings == nsr.warm_start_settings(
            budget, seed=3, data_source="bundled:mnist"
        )
        assert models[0].kwargs["init_path"].endswith("model.keras")
        assert os.path.dirname(tasks[0].record) == os.path.dirname(
            models[0].kwargs["init_path"]
        )
        # Once every model is finished, the warm start is not needed.
        for task in models:
            store.write_json_atomic(
                task.record, store.with_settings({}, task.settings)
            )
        again = nsr.fig1_tasks(
            order, str(tmp_path), budget, seed=3, data_source="bundled:mnist"
        )
        assert [t.key for t in again] == order


def test_ray_engine_without_ray_is_a_value_error(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "ray" else find_spec(name, *a),
    )
    with pytest.raises(ValueError, match="needs Ray"):
        engine_lib.make_engine("ray")
