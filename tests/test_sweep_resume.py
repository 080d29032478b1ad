"""Epoch checkpoints: an interrupted run resumes to the uninterrupted result."""

import os

import numpy as np
import pytest

from nsr_tf import sweep
from nsr_tf import training
from nsr_tf.data.pipeline import to_dataset
from nsr_tf.sweep import resume
from nsr_tf.sweep import store
from nsr_tf.sweep.epoch_progress import EpochProgress

PRESET = sweep.Preset(
    "resume",
    epochs=3,
    batch_size=64,
    train_examples=256,
    eval_examples=100,
    early_stopping=False,
    betas=(2.0,),
)
KEY = "mnist/mlp1/fgm_l2/beta_2"


def _sweep(out):
    sweep.run_table1("mnist", out, PRESET, only=("mlp1:fgm_l2",), verbose=0)
    return store.read_json(store.record_path(out, KEY))


def test_interrupted_run_resumes_from_its_last_finished_epoch(
    tmp_path, monkeypatch
):
    whole = _sweep(str(tmp_path / "whole"))
    assert whole["resumed_at_epochs"] == []

    save = resume.EpochCheckpoint.on_epoch_end

    def crash_after_second_epoch(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt("simulated end of session")

    monkeypatch.setattr(
        resume.EpochCheckpoint, "on_epoch_end", crash_after_second_epoch
    )
    out = str(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        _sweep(out)
    checkpoint = resume.checkpoint_dir(store.run_dir(out, KEY))
    assert not store.is_done(out, KEY)
    assert store.read_json(f"{checkpoint}/state.json")["epochs"] == 2
    monkeypatch.setattr(resume.EpochCheckpoint, "on_epoch_end", save)
    resumed = _sweep(out)

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
