"""Resume: records reused only for their settings, epoch checkpoints."""

import dataclasses
import math
import os

import numpy as np
import pytest

from nsr_tf import sweep
from nsr_tf import training
from nsr_tf.data.pipeline import to_dataset
from nsr_tf.sweep import resume
from nsr_tf.sweep import rows as rows_lib
from nsr_tf.sweep import runner
from nsr_tf.sweep import store
from nsr_tf.sweep.engine import SweepFailedError
from nsr_tf.sweep.epoch_progress import EpochProgress
from tests._sweep_helpers import TINY as ONE_EPOCH
from tests._sweep_helpers import record as _record

TINY = dataclasses.replace(ONE_EPOCH, betas=(math.inf,))
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
    # The case: a smoke sweep's directory rerun with other settings.
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


PRESET = dataclasses.replace(
    ONE_EPOCH, name="resume", epochs=3, eval_examples=100, betas=(2.0,)
)
EPOCH_KEY = "mnist/mlp1/fgm_l2/beta_2"


def _epoch_sweep(out):
    sweep.run_table1("mnist", out, PRESET, only=("mlp1:fgm_l2",), verbose=0)
    return store.read_json(store.record_path(out, EPOCH_KEY))


def test_interrupted_run_resumes_from_its_last_finished_epoch(
    tmp_path, monkeypatch
):
    whole = _epoch_sweep(str(tmp_path / "whole"))
    assert whole["resumed_at_epochs"] == []

    save = resume.EpochCheckpoint.on_epoch_end

    def crash_after_second_epoch(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(
        resume.EpochCheckpoint, "on_epoch_end", crash_after_second_epoch
    )
    out = str(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        _epoch_sweep(out)
    checkpoint = resume.checkpoint_dir(store.run_dir(out, EPOCH_KEY))
    assert not store.is_done(out, EPOCH_KEY)
    assert store.read_json(f"{checkpoint}/state.json")["epochs"] == 2
    monkeypatch.setattr(resume.EpochCheckpoint, "on_epoch_end", save)
    resumed = _epoch_sweep(out)

    assert resumed["resumed_at_epochs"] == [2]
    assert resumed["epochs_run"] == whole["epochs_run"] == 3
    assert not os.path.exists(checkpoint)
    # The epochs before the cut are the uninterrupted run's, carried over;
    # the resumed epoch trains on (another order of) the same data.
    assert resumed["history"].keys() == whole["history"].keys()
    for k, values in whole["history"].items():
        np.testing.assert_allclose(resumed["history"][k][:2], values[:2])
        assert len(resumed["history"][k]) == 3
    assert (
        abs(resumed["metrics"]["train_acc"] - whole["metrics"]["train_acc"])
        < 0.1
    )
    assert resumed["train_seconds"] > 0


def test_checkpoint_of_other_settings_or_without_weights_is_ignored(
    tmp_path,
):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    directory = str(tmp_path / "checkpoint")
    callback = resume.EpochCheckpoint(directory, "abc")
    model.fit(
        np.ones((8, 3)), np.ones((8, 2)), epochs=2, verbose=0,
        callbacks=[callback],
    )  # fmt: skip
    assert sorted(os.listdir(directory)) == [
        "epoch_2.weights.h5",
        "state.json",
    ]
    assert resume.restore(model, directory, "other") is None
    start = resume.restore(model, directory, "abc")
    assert (start.epochs, start.stopped, start.resumed_at) == (2, False, ())
    assert len(start.history["loss"]) == 2
    assert int(model.optimizer.iterations.numpy()) == 2
    os.remove(f"{directory}/epoch_2.weights.h5")  # crash between writes
    assert resume.restore(model, directory, "abc") is None
    resume.clear(directory)
    assert resume.restore(model, directory, "abc") is None


@pytest.mark.parametrize("mode, kwargs", [("erm", {}), ("fgm", {"eps": 0.3})])
def test_restore_gives_back_every_variable_of_model_and_optimizer(
    tmp_path, mode, kwargs
):
    """SN power-iteration vectors, weights, Adam moments, step count."""
    import keras

    from nsr_tf import models

    def build(seed):
        keras.utils.set_random_seed(seed)
        net = models.build("mlp1", beta=1.0, input_shape=(6, 6, 1))
        robust = training.robustify(
            net, training.RobustConfig(mode=mode, **kwargs)
        )
        robust.compile(
            optimizer=keras.optimizers.Adam(1e-2),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return robust

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6, 6, 1)).astype("float32")
    y = rng.integers(0, 10, size=32)
    trained = build(0)
    directory = str(tmp_path / "checkpoint")
    trained.fit(
        x, y, batch_size=8, epochs=2, verbose=0,
        callbacks=[resume.EpochCheckpoint(directory, "f")],
    )  # fmt: skip
    fresh = build(1)
    assert resume.restore(fresh, directory, "f").epochs == 2
    pairs = [
        *zip(trained.variables, fresh.variables, strict=True),
        *zip(
            trained.optimizer.variables,
            fresh.optimizer.variables,
            strict=True,
        ),
    ]
    assert any("u" in v.path.split("/")[-1] for v, _ in pairs)  # SN state
    for want, got in pairs:
        np.testing.assert_array_equal(got.numpy(), want.numpy(), want.path)


@pytest.mark.parametrize("skipped", [0, 1, 3])
def test_skip_epochs_draws_the_permutations_already_used(skipped):
    x = np.arange(24, dtype="float32")[:, None]
    order = lambda ds: np.concatenate([b[1].numpy() for b in ds])  # noqa: E731
    whole = to_dataset(x, np.arange(24), batch_size=4, seed=7)
    orders = [order(whole) for _ in range(skipped + 2)]
    cut = to_dataset(x, np.arange(24), batch_size=4, seed=7)
    resume.skip_epochs(cut, skipped)
    assert np.array_equal(order(cut), orders[skipped])
    assert np.array_equal(order(cut), orders[skipped + 1])
    assert not np.array_equal(orders[0], orders[1])


class _Model:
    stop_training = False


@pytest.mark.parametrize(
    "past, stops", [({"clean_accuracy": [1.0, 1.0]}, True), (None, False)]
)
def test_early_stopping_window_spans_the_epochs_before_a_resume(past, stops):
    callback = training.SNEarlyStopping(window=3, threshold=0.99, past=past)
    callback.set_model(_Model())
    callback.on_train_begin()
    callback.on_epoch_end(2, {"clean_accuracy": 1.0, "loss": 0.1})
    assert callback.model.stop_training is stops
    assert (callback.stopped_epoch == 2) is stops


def test_epoch_progress_times_only_the_epochs_of_a_resumed_fit():
    now = [0.0]
    callback = EpochProgress(10, clock=lambda: now[0])
    callback.on_train_begin()
    callback.on_epoch_begin(6)  # resumed after 6 epochs
    now[0] += 10.0
    callback.on_epoch_end(6)
    assert callback.lines == ["epoch 7/10 elapsed 0:00:10 eta 0:00:30"]
