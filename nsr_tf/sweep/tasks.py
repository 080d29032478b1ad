"""Entry points of sweep runs: what one engine task executes.

Each function takes plain arguments only (so a task can travel to a Ray
worker), loads the data itself (cached per process, so an in-process sweep
loads it once) and calls the same code as the in-process sweep with the
same seeds, so a run gives the same record wherever it executes.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=2)
def sweep_data(
    dataset: str,
    data_dir: str | None = None,
    source: str = "auto",
    train_examples: int | None = None,
    random_labels: bool = False,
):
    """:class:`~nsr_tf.sweep.runner.SweepData` of a dataset, cached."""
    from nsr_tf.sweep import presets
    from nsr_tf.sweep import runner

    preset = presets.Preset("data", epochs=1, train_examples=train_examples)
    return runner.SweepData.load(
        dataset,
        data_dir=data_dir,
        source=source,
        preset=preset,
        random_labels=random_labels,
    )


def table1_run(
    dataset: str,
    arch: str,
    training: str,
    beta: float,
    preset: dict,
    output_dir: str,
    data: dict,
    seed: int = 0,
    verbose: int = 2,
    overwrite: bool = False,
    extra_settings: dict | None = None,
) -> dict:
    """One (row, beta) of Table 1; returns its metrics."""
    from nsr_tf.sweep import runner
    from nsr_tf.sweep.presets import Preset
    from nsr_tf.sweep.rows import Row

    preset = Preset(**preset)
    arrays = sweep_data(dataset, train_examples=preset.train_examples, **data)
    record = runner.run_one(
        Row(dataset, arch, training),
        beta,
        arrays,
        preset,
        output_dir,
        seed=seed,
        verbose=verbose,
        overwrite=overwrite,
        extra_settings=extra_settings,
    )
    return record["metrics"]


def timing_row(
    table: str,
    dataset: str,
    arch: str,
    training: str,
    path: str,
    data: dict,
    epochs: int,
    batch_size: int = 128,
    eval_examples: int | None = None,
    overwrite: bool = False,
) -> None:
    """One row of Table 2 or 3, recorded at ``path``."""
    from nsr_tf.sweep import tables23

    arrays = sweep_data(dataset, **data)
    tables23.time_row(
        table,
        arch,
        training,
        arrays,
        path,
        epochs=epochs,
        batch_size=batch_size,
        eval_examples=eval_examples,
        overwrite=overwrite,
    )


@functools.lru_cache(maxsize=1)
def fig1_data(train_examples: int | None, test_examples: int | None):
    """MNIST train and test arrays of the NSR paper's Fig. 1, cached.

    The test arrays are the whole official test set in its order (the SN
    protocol's validation and test splits together): the NSR paper has no
    validation split, and its scale selection holds out training images.
    """
    import numpy as np

    from nsr_tf import data as data_lib

    x_tr, y_tr = data_lib.load("mnist", "train")
    x_va, y_va = data_lib.load("mnist", "validation")
    x_te, y_te = data_lib.load("mnist", "test")
    x_te, y_te = np.concatenate([x_va, x_te]), np.concatenate([y_va, y_te])
    if train_examples:
        x_tr, y_tr = x_tr[:train_examples], y_tr[:train_examples]
    n_test = test_examples or len(y_te)
    return x_tr, y_tr, x_te[:n_test], y_te[:n_test]


def fig1_warm_start(
    budget: dict,
    output_dir: str,
    seed: int = 0,
    data_source: str = "",
    overwrite: bool = False,
) -> str:
    """The common start of the Fig. 1 models; returns its path."""
    from nsr_tf.sweep import nsr

    budget = nsr.NSRBudget(**budget)
    arrays = fig1_data(budget.train_examples, budget.test_examples)
    return nsr.warm_start_path(
        arrays,
        budget,
        output_dir,
        seed,
        data_source=data_source,
        overwrite=overwrite,
    )


def fig1_model(
    name: str,
    budget: dict,
    output_dir: str,
    seed: int = 0,
    init_path: str | None = None,
    data_source: str = "",
    overwrite: bool = False,
) -> float:
    """One model of the NSR paper's Fig. 1; returns its AUC."""
    from nsr_tf.sweep import nsr

    budget = nsr.NSRBudget(**budget)
    arrays = fig1_data(budget.train_examples, budget.test_examples)
    record = nsr.run_model(
        name,
        arrays,
        budget,
        output_dir,
        seed=seed,
        init_path=init_path,
        data_source=data_source,
        overwrite=overwrite,
    )
    return record["auc"]
