"""One Table 1 run: train a (row, beta) model, evaluate, export, record."""

from __future__ import annotations

import dataclasses
import math
import os

import keras
import numpy as np

from nsr_tf import data as data_lib
from nsr_tf import evaluation
from nsr_tf import export
from nsr_tf import models
from nsr_tf import training
from nsr_tf.sweep import certified
from nsr_tf.sweep import resume
from nsr_tf.sweep import rows as rows_lib
from nsr_tf.sweep import store
from nsr_tf.sweep.epoch_progress import EpochProgress


@dataclasses.dataclass
class SweepData:
    """The arrays of one dataset, loaded once for every run of a sweep."""

    dataset: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    c2: float
    random_labels: bool = False
    data_source: str = ""

    @classmethod
    def load(
        cls,
        dataset,
        *,
        data_dir=None,
        source="auto",
        preset=None,
        random_labels=False,
    ):
        """Loads the three splits; C2 is computed on the full train set.

        ``random_labels=True`` replaces every label of every split by a
        random class drawn with seed 100, as the SN paper's Fig. 3-4 runs.
        """
        arrays = {}
        for split in ("train", "validation", "test"):
            arrays[split] = data_lib.load(
                dataset,
                split,
                data_dir=data_dir,
                source=source,
                random_labels=random_labels,
                seed=100,
            )
        data_source = data_lib.describe_source(
            dataset, data_dir=data_dir, source=source
        )
        c2 = data_lib.mean_l2_norm(arrays["train"][0])
        x_tr, y_tr = arrays["train"]
        x_te, y_te = arrays["test"]
        if preset is not None and preset.train_examples:
            x_tr, y_tr = (
                x_tr[: preset.train_examples],
                y_tr[: preset.train_examples],
            )
        return cls(
            dataset,
            x_tr,
            y_tr,
            *arrays["validation"],
            x_te,
            y_te,
            c2,
            random_labels,
            data_source,
        )


def make_optimizer(kind: str, learning_rate: float | None = None):
    """The SN paper's optimizers (spec ``sn_paper.md`` §5).

    Momentum 0.9 at lr 0.01 (the schedule 0.01 * 0.95^(epoch/390) is
    constant to 1% over 200 epochs), or Adam at lr 1e-3 with TF1's epsilon.
    ``learning_rate`` replaces the paper's rate when given.
    """
    if kind == "adam":
        return keras.optimizers.Adam(
            learning_rate=learning_rate or 1e-3, epsilon=1e-8
        )
    if kind == "momentum":
        return keras.optimizers.SGD(
            learning_rate=learning_rate or 0.01, momentum=0.9
        )
    raise ValueError(
        f"`kind` must be 'adam' or 'momentum'. Received: kind={kind!r}"
    )


def row_optimizer(row: rows_lib.Row, preset) -> str:
    """The preset's optimizer when it names one, else the row's."""
    return preset.optimizer or row.optimizer


def attack_accuracy(model, x, y, setting, *, batch_size=500) -> float:
    """Accuracy under the row's training attack (clean for ERM).

    As the SN paper evaluates Table 1: the attack starts from the model's
    own predictions, accuracy is measured against the true labels.
    """
    attack, kwargs = setting.attack_call()
    return evaluation.robust_accuracy(
        model,
        (x, y),
        attack,
        batch_size=batch_size,
        progress=False,
        attack_labels="predicted",
        **kwargs,
    )


def run_key(row: rows_lib.Row, beta: float) -> str:
    return f"{row.key}/beta_{rows_lib.format_beta(beta)}"


def run_epochs(row: rows_lib.Row, preset) -> int:
    """The preset's epochs for the row's training, capped by the row's
    own (e.g. ELU-Net: 25)."""
    epochs = preset.epochs_for(row.training)
    if row.max_epochs is not None:
        return min(epochs, row.max_epochs)
    return epochs


def sweep_settings(
    dataset: str,
    preset,
    *,
    data_source: str,
    random_labels: bool,
    seed: int,
    **extra,
) -> dict:
    """Settings shared by every run of a Table 1 sweep (records' ``sweep``).

    Every preset field that affects a run's result (not its name, nor the
    beta grid: each run records its own beta), the dataset and where it was
    read from, random labels, the seed and the library version. ``extra``
    holds any further setting that can change results (e.g. a speed option
    such as ``jit_compile``); ``None`` values are left out.
    """
    import nsr_tf

    fields = dataclasses.asdict(preset)
    # which runs a sweep holds, not how any one run trains
    for key in ("name", "betas", "archs", "betas_by_training"):
        fields.pop(key)
    return {
        "dataset": dataset,
        "data_source": data_source,
        "random_labels": bool(random_labels),
        "seed": int(seed),
        "preset": fields,
        "nsr_tf_version": nsr_tf.__version__,
        **{k: v for k, v in extra.items() if v is not None},
    }


def run_settings(row: rows_lib.Row, beta: float, preset, shared: dict):
    """A run's ``settings``: the sweep's, and the run's own (``run``)."""
    return {
        "sweep": shared,
        "run": {
            "run_key": run_key(row, beta),
            "arch": row.arch,
            "training": row.training,
            "beta": rows_lib.format_beta(beta),
            "optimizer": row_optimizer(row, preset),
            "epochs": run_epochs(row, preset),
        },
    }


def run_one(
    row: rows_lib.Row,
    beta: float,
    arrays: SweepData,
    preset,
    output_dir: str,
    *,
    seed: int = 0,
    verbose: int = 2,
    overwrite: bool = False,
    extra_settings: dict | None = None,
) -> dict:
    """Trains, evaluates and exports one (row, beta) and records it.

    The record (``record.json``) is written last and atomically, with the
    run's ``settings`` and their ``fingerprint``. A run whose record has
    the same fingerprint is returned as is without training again; see
    :func:`nsr_tf.sweep.store.reuse_record` for corrupt records and records
    of other settings (an error unless ``overwrite``). ``extra_settings``
    are recorded with the sweep's settings (see :func:`sweep_settings`).
    """
    key = run_key(row, beta)
    settings = run_settings(
        row,
        beta,
        preset,
        sweep_settings(
            arrays.dataset,
            preset,
            data_source=arrays.data_source,
            random_labels=arrays.random_labels,
            seed=seed,
            **(extra_settings or {}),
        ),
    )
    path = store.record_path(output_dir, key)
    done = store.reuse_record(path, settings, name=key, overwrite=overwrite)
    if done is not None:
        return done
    directory = store.run_dir(output_dir, key)
    keras.utils.set_random_seed(seed)
    setting = rows_lib.attack_setting(row.dataset, row.training, arrays.c2)
    model = models.build(
        row.arch, beta=beta, input_shape=arrays.x_train.shape[1:]
    )
    config = training.RobustConfig(**setting.as_config_kwargs())
    robust = training.robustify(model, config)
    robust.compile(
        optimizer=make_optimizer(
            row_optimizer(row, preset), preset.learning_rate
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=preset.jit_compile,
    )
    epochs = run_epochs(row, preset)
    fingerprint = store.fingerprint(settings)
    checkpoint_dir = resume.checkpoint_dir(directory)
    if overwrite:
        resume.clear(checkpoint_dir)
    start = resume.restore(robust, checkpoint_dir, fingerprint)
    trained = 0 if start is None else start.epochs
    early = None
    if preset.early_stopping:
        early = training.SNEarlyStopping(past=start.history if start else None)
    checkpoint = resume.EpochCheckpoint(
        checkpoint_dir, fingerprint, start=start, early_stopping=early
    )
    callbacks = [
        keras.callbacks.TensorBoard(log_dir=os.path.join(directory, "logs")),
        EpochProgress(epochs),
        *([early] if early else []),
        checkpoint,  # last: it saves whether early stopping fired
    ]
    train_ds = data_lib.to_dataset(
        arrays.x_train, arrays.y_train, batch_size=preset.batch_size, seed=seed
    )
    resume.skip_epochs(train_ds, trained)
    if not (start and (start.stopped or trained >= epochs)):
        robust.fit(
            train_ds,
            epochs=epochs,
            initial_epoch=trained,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the dataset reshuffles every epoch itself
        )
    n_eval = preset.eval_examples
    metrics = {
        "train_acc": attack_accuracy(
            robust, arrays.x_train[:n_eval], arrays.y_train[:n_eval], setting
        ),
        "val_acc": attack_accuracy(robust, arrays.x_val, arrays.y_val, setting),
        "test_acc": attack_accuracy(
            robust, arrays.x_test[:n_eval], arrays.y_test[:n_eval], setting
        ),
    }
    certified_l2 = certified.certified_record(
        robust,
        arrays.x_test[:n_eval],
        arrays.y_test[:n_eval],
        certified.run_l2_eps(row.dataset, setting, arrays.c2),
    )
    robust.save(os.path.join(directory, "model.keras"))
    export.export_attack_ready(robust, os.path.join(directory, "saved_model"))
    record = {
        "run_key": key,
        "row_key": row.key,
        "dataset": row.dataset,
        "arch": row.arch,
        "training": row.training,
        "beta": rows_lib.format_beta(beta),
        "preset": dataclasses.asdict(preset),
        "attack": dataclasses.asdict(setting),
        "config": config.get_config(),
        "optimizer": row_optimizer(row, preset),
        "c2": arrays.c2,
        "random_labels": arrays.random_labels,
        "seed": seed,
        "epochs_run": len(checkpoint.history.get("loss", [])),
        "train_seconds": checkpoint.seconds,
        "resumed_at_epochs": checkpoint.resumed_at,
        "history": checkpoint.history,
        "metrics": metrics,
        "certified": certified_l2,
    }
    record["metrics"] = {
        k: (None if v is None or math.isnan(v) else float(v))
        for k, v in metrics.items()
    }
    record = store.with_settings(record, settings)
    store.write_json_atomic(path, record)
    resume.clear(checkpoint_dir)
    return record
