"""Training the NSR paper's Fig. 1 models: one fit, and the warm start.

:func:`train` is the one fit every Fig. 1 model goes through (penalty-scale
selection, the models themselves and the Standard warm start that the
fine-tuned models start from); :func:`warm_start_path` trains and records
that warm start once per settings.
"""

from __future__ import annotations

import os

import keras

from nsr_tf.sweep import store
from nsr_tf.sweep.epoch_progress import EpochProgress
from nsr_tf.sweep.nsr_specs import config_of
from nsr_tf.sweep.nsr_specs import warm_start_settings


def train(config, x, y, budget, epochs, seed, init_path, probe):
    from nsr_tf import data as data_lib
    from nsr_tf import models
    from nsr_tf import training

    keras.utils.set_random_seed(seed)
    model = models.build("nsr_mlp", input_shape=x.shape[1:])
    if init_path:
        model.set_weights(keras.saving.load_model(init_path).get_weights())
    robust = training.robustify(model, training.RobustConfig(**config))
    robust.compile(
        optimizer=keras.optimizers.Adam(budget.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    monitor = training.CollapseMonitor(probe)
    history = robust.fit(
        data_lib.to_dataset(x, y, batch_size=budget.batch_size, seed=seed),
        epochs=epochs,
        verbose=2,
        callbacks=[monitor, EpochProgress(epochs)],
        shuffle=False,  # the dataset reshuffles every epoch itself
    )
    hist = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return robust, hist, monitor.collapse_reason


def warm_start_file(output_dir):
    return os.path.join(output_dir, "warm_start", "model.keras")


def warm_start_record(output_dir):
    return os.path.join(output_dir, "warm_start", "record.json")


def warm_start_path(
    arrays, budget, output_dir, seed, *, data_source="", overwrite=False
):
    """Standard trained ``budget.epochs`` epochs, the common start; its
    path (trained and saved once).

    Its record (``warm_start/record.json``) holds the settings it was
    trained with (:func:`warm_start_settings`) and is written
    after the model: a model without a record is trained again, and one
    whose record holds other settings stops the run (``overwrite``
    retrains it).

    Raises:
        SettingsMismatchError: when the saved model was trained with other
            settings and ``overwrite`` is false.
    """
    path, record_path = (
        warm_start_file(output_dir),
        warm_start_record(output_dir),
    )
    settings = warm_start_settings(budget, seed=seed, data_source=data_source)
    done = store.reuse_record(
        record_path, settings, name="warm_start", overwrite=overwrite
    )
    if done is not None and os.path.exists(path):
        return path
    x_tr, y_tr = arrays[:2]
    robust, _, _ = train(
        config_of("standard"), x_tr, y_tr, budget, budget.epochs, seed,
        None, x_tr[:500],
    )  # fmt: skip
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = os.path.join(os.path.dirname(path), "partial.keras")
    robust.save(partial)
    os.replace(partial, path)
    store.write_json_atomic(
        record_path, store.with_settings({"model": path}, settings)
    )
    return path
