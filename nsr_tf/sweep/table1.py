"""The Table 1 sweep: enumerate, shard, run, resume, merge and report."""

from __future__ import annotations

import dataclasses
import json
import os

from absl import logging

from nsr_tf.sweep import engine as engine_lib
from nsr_tf.sweep import report
from nsr_tf.sweep import rows as rows_lib
from nsr_tf.sweep import store
from nsr_tf.sweep.presets import Preset


def plan(
    dataset: str,
    preset: Preset,
    *,
    only: tuple[str, ...] = (),
) -> list[tuple[rows_lib.Row, float]]:
    """Every (row, beta) run of ``dataset`` in a fixed order.

    Args:
        dataset: ``mnist``, ``cifar10`` or ``svhn``.
        preset: supplies the beta grid override, if any.
        only: restrict to rows named ``arch:training`` (empty: all rows).
    """
    table_rows = rows_lib.table1_rows(dataset)
    known = {f"{r.arch}:{r.training}" for r in table_rows}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ValueError(
            f"`rows` must name rows of the {dataset} table ({sorted(known)}). "
            f"Received: rows={unknown}"
        )
    runs = []
    for row in table_rows:
        if only and f"{row.arch}:{row.training}" not in only:
            continue
        if preset.archs is not None and row.arch not in preset.archs:
            continue
        rule = preset.beta_rule_for(row.training)
        for beta in preset.betas or rows_lib.row_betas(row, rule):
            runs.append((row, beta))
    return runs


def shard(runs: list, shard_index: int, num_shards: int) -> list:
    """Runs ``i`` with ``i % num_shards == shard_index`` (round robin)."""
    check_shard(shard_index, num_shards)
    return runs[shard_index::num_shards]


def check_shard(shard_index: int, num_shards: int) -> None:
    """``num_shards >= 1`` and ``0 <= shard_index < num_shards``."""
    if num_shards < 1:
        raise ValueError(
            f"`num_shards` must be >= 1. Received: num_shards={num_shards}"
        )
    if not 0 <= shard_index < num_shards:
        raise ValueError(
            f"`shard_index` must be in [0, {num_shards}). "
            f"Received: shard_index={shard_index}"
        )


def merged_records(
    dataset: str, output_dir: str, *, input_dirs: tuple[str, ...] = ()
) -> list[dict]:
    """The records of one table, refusing records of different sweeps.

    Raises:
        SettingsMismatchError: when the records are not all of one sweep's
            settings (``settings["sweep"]``), or two copies of one run
            differ.
    """
    records = store.read_records(
        (output_dir, *input_dirs), prefix=f"{dataset}/"
    )
    store.check_same_settings(records, part="sweep")
    return records


def write_table(
    dataset: str,
    output_dir: str,
    *,
    input_dirs: tuple[str, ...] = (),
    note: str = "",
) -> list[dict]:
    """Assembles ``table1_<dataset>.{md,csv,json}`` from finished records,
    and ``table1_<dataset>_runs.md`` with every run.

    Records are read from ``output_dir`` and every directory of
    ``input_dirs`` (the output directories of shards run elsewhere).

    Raises:
        SettingsMismatchError: when the records are not all of one sweep's
            settings (``settings["sweep"]``), or two copies of one run
            differ.
    """
    records = merged_records(dataset, output_dir, input_dirs=input_dirs)
    table = report.table_rows(dataset, records)
    base = os.path.join(output_dir, f"table1_{dataset}")
    store.write_text_atomic(
        base + ".md", report.to_markdown(dataset, table, note=note)
    )
    store.write_text_atomic(base + ".csv", report.to_csv(table))
    store.write_text_atomic(
        base + "_runs.md", report.runs_markdown(dataset, records)
    )
    store.write_json_atomic(
        base + ".json", {"dataset": dataset, "rows": table, "runs": records}
    )
    return table


def check_resume(
    dataset: str,
    output_dir: str,
    preset: Preset,
    *,
    data_dir: str | None = None,
    source: str = "auto",
    only: tuple[str, ...] = (),
    shard_index: int = 0,
    num_shards: int = 1,
    seed: int = 0,
    random_labels: bool = False,
    overwrite: bool = False,
    extra_settings: dict | None = None,
):
    """Checks a shard before it runs; writes nothing, trains nothing.

    Returns:
        ``(runs, shared, items)``: the shard's ``(row, beta)`` runs, the
        sweep's settings and one ``(run_key, record_path, settings)`` per
        run.

    Raises:
        ValueError: for bad rows or shard arguments, or when the data
            source holds no official files.
        SettingsMismatchError: naming every run of this shard whose record
            has other settings (unless ``overwrite``).
    """
    from nsr_tf import data as data_lib
    from nsr_tf.sweep import runner  # TensorFlow-heavy; imported on use

    runs = shard(plan(dataset, preset, only=only), shard_index, num_shards)
    shared = runner.sweep_settings(
        dataset,
        preset,
        data_source=data_lib.describe_source(
            dataset, data_dir=data_dir, source=source
        ),
        random_labels=random_labels,
        seed=seed,
        **(extra_settings or {}),
    )
    items = [
        (
            runner.run_key(r, b),
            store.record_path(output_dir, runner.run_key(r, b)),
            runner.run_settings(r, b, preset, shared),
        )
        for r, b in runs
    ]
    store.check_resumable(items, overwrite=overwrite)
    return runs, shared, items


def table1_tasks(
    runs: list[tuple[rows_lib.Row, float]],
    items: list[tuple[str, str, dict]],
    output_dir: str,
    preset: Preset,
    *,
    data: dict,
    seed: int = 0,
    verbose: int = 2,
    overwrite: bool = False,
    extra_settings: dict | None = None,
) -> list[engine_lib.Task]:
    """One engine task per (row, beta) run (see :mod:`nsr_tf.sweep.tasks`).

    ``runs`` and ``items`` are as :func:`check_resume` returns them; each
    task is finished once its record holds its settings. ``data`` holds the
    data arguments (``data_dir``, ``source``, ``random_labels``) every
    worker loads its arrays with. A task's cost is its epochs times the
    gradient passes of its training step.
    """
    from nsr_tf.sweep import runner  # TensorFlow-heavy; imported on use

    tasks = []
    for (row, beta), (key, path, settings) in zip(runs, items, strict=True):
        # The number of passes does not depend on the data's scale C2.
        setting = rows_lib.attack_setting(row.dataset, row.training, 1.0)
        cost = runner.run_epochs(row, preset) * setting.gradient_passes
        kwargs = dict(
            dataset=row.dataset,
            arch=row.arch,
            training=row.training,
            beta=beta,
            preset=dataclasses.asdict(preset),
            output_dir=output_dir,
            data=data,
            seed=seed,
            verbose=verbose,
            overwrite=overwrite,
            extra_settings=extra_settings,
        )
        tasks.append(
            engine_lib.Task(
                key,
                "nsr_tf.sweep.tasks:table1_run",
                kwargs,
                record=path,
                settings=settings,
                cost=cost,
            )
        )
    return tasks


def run_table1(
    dataset: str,
    output_dir: str,
    preset: Preset,
    *,
    data_dir: str | None = None,
    source: str = "auto",
    only: tuple[str, ...] = (),
    shard_index: int = 0,
    num_shards: int = 1,
    seed: int = 0,
    verbose: int = 2,
    random_labels: bool = False,
    overwrite: bool = False,
    extra_settings: dict | None = None,
    engine=None,
) -> list[dict]:
    """Runs this shard's unfinished runs, then writes the table.

    ``random_labels=True`` trains on uniformly random labels (SN paper
    Fig. 3-4); use a separate ``output_dir`` for such sweeps.

    Finished runs (with a record of the same settings) are skipped, so an
    interrupted sweep resumes where it stopped. Before anything trains,
    every record of this shard made with other settings is reported in one
    ``SettingsMismatchError`` (:func:`check_resume`); ``overwrite=True``
    redoes those runs instead. A corrupt record is set aside and its run
    redone. ``extra_settings`` (e.g. a speed option) are recorded with the
    sweep's settings.

    ``engine`` runs the runs (default: in this process, see
    :func:`nsr_tf.sweep.engine.make_engine`); a run that fails is reported,
    the others complete and the table is written from them before
    :class:`~nsr_tf.sweep.engine.SweepFailedError` is raised. Returns the
    table rows.
    """
    runs, shared, items = check_resume(
        dataset,
        output_dir,
        preset,
        data_dir=data_dir,
        source=source,
        only=only,
        shard_index=shard_index,
        num_shards=num_shards,
        seed=seed,
        random_labels=random_labels,
        overwrite=overwrite,
        extra_settings=extra_settings,
    )
    os.makedirs(output_dir, exist_ok=True)
    tasks = table1_tasks(
        runs,
        items,
        output_dir,
        preset,
        data=dict(
            data_dir=data_dir, source=source, random_labels=random_labels
        ),
        seed=seed,
        verbose=verbose,
        overwrite=overwrite,
        extra_settings=extra_settings,
    )
    store.write_json_atomic(
        os.path.join(output_dir, f"sweep_{dataset}_shard{shard_index}.json"),
        {
            "preset": preset.__dict__,
            "random_labels": random_labels,
            "settings": shared,
            "fingerprint": store.fingerprint(shared),
            "runs": [t.key for t in tasks],
        },
    )
    result = (engine or engine_lib.InProcessEngine()).run(tasks)
    for key, metrics in result.done.items():
        logging.info("%s -> %s", key, json.dumps(metrics))
    table = write_table(dataset, output_dir)
    result.raise_on_failure()
    return table
