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
        for beta in preset.betas or row.beta_grid:
            runs.append((row, beta))
    return runs


def shard(runs: list, shard_index: int, num_shards: int) -> list:
    """Runs ``i`` with ``i % num_shards == shard_index`` (round robin)."""
    if num_shards < 1:
        raise ValueError(
            f"`num_shards` must be >= 1. Received: num_shards={num_shards}"
        )
    if not 0 <= shard_index < num_shards:
        raise ValueError(
            f"`shard_index` must be in [0, {num_shards}). "
            f"Received: shard_index={shard_index}"
        )
    return runs[shard_index::num_shards]


def write_table(
    dataset: str,
    output_dir: str,
    *,
    input_dirs: tuple[str, ...] = (),
    note: str = "",
) -> list[dict]:
    """Assembles ``table1_<dataset>.{md,csv,json}`` from finished records.

    Records are read from ``output_dir`` and every directory of
    ``input_dirs`` (the output directories of shards run elsewhere).
    """
    records = store.read_records(
        (output_dir, *input_dirs), prefix=f"{dataset}/"
    )
    table = report.table_rows(dataset, records)
    base = os.path.join(output_dir, f"table1_{dataset}")
    store.write_text_atomic(
        base + ".md", report.to_markdown(dataset, table, note=note)
    )
    store.write_text_atomic(base + ".csv", report.to_csv(table))
    store.write_json_atomic(
        base + ".json", {"dataset": dataset, "rows": table, "runs": records}
    )
    return table


def table1_tasks(
    runs: list[tuple[rows_lib.Row, float]],
    output_dir: str,
    preset: Preset,
    *,
    data: dict,
    seed: int = 0,
    verbose: int = 2,
) -> list[engine_lib.Task]:
    """One engine task per (row, beta) run (see :mod:`nsr_tf.sweep.tasks`).

    ``data`` holds the data arguments (``data_dir``, ``source``,
    ``random_labels``) every worker loads its arrays with.
    """
    tasks = []
    for row, beta in runs:
        key = f"{row.key}/beta_{rows_lib.format_beta(beta)}"
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
        )
        tasks.append(
            engine_lib.Task(
                key,
                "nsr_tf.sweep.tasks:table1_run",
                kwargs,
                record=store.record_path(output_dir, key),
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
    engine=None,
) -> list[dict]:
    """Runs this shard's unfinished runs, then writes the table.

    ``random_labels=True`` trains on uniformly random labels (SN paper
    Fig. 3-4); use a separate ``output_dir`` for such sweeps.

    Finished runs (with a record) are skipped, so an interrupted sweep
    resumes where it stopped. ``engine`` runs the runs (default: in this
    process, see :func:`nsr_tf.sweep.engine.make_engine`); a run that fails
    is reported, the others complete and the table is written from them
    before :class:`~nsr_tf.sweep.engine.SweepFailedError` is raised.
    Returns the table rows.
    """
    runs = shard(plan(dataset, preset, only=only), shard_index, num_shards)
    os.makedirs(output_dir, exist_ok=True)
    tasks = table1_tasks(
        runs,
        output_dir,
        preset,
        data=dict(
            data_dir=data_dir, source=source, random_labels=random_labels
        ),
        seed=seed,
        verbose=verbose,
    )
    store.write_json_atomic(
        os.path.join(output_dir, f"sweep_{dataset}_shard{shard_index}.json"),
        {
            "preset": preset.__dict__,
            "random_labels": random_labels,
            "runs": [t.key for t in tasks],
        },
    )
    result = (engine or engine_lib.InProcessEngine()).run(tasks)
    for key, metrics in result.done.items():
        logging.info("%s -> %s", key, json.dumps(metrics))
    table = write_table(dataset, output_dir)
    result.raise_on_failure()
    return table
