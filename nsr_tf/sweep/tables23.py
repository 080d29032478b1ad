"""Orchestration of Tables 2 and 3: which rows, resume, and the report."""

from __future__ import annotations

import math
import os

from absl import logging

from nsr_tf import reference
from nsr_tf.sweep import engine as engine_lib
from nsr_tf.sweep import rows as rows_lib
from nsr_tf.sweep import store
from nsr_tf.sweep import timing


def _paper_rows(table: str, dataset: str, only: tuple[str, ...]):
    rows = [
        r for r in reference.sn_paper_tables()[table] if r["dataset"] == dataset
    ]
    if only:
        rows = [r for r in rows if f"{r['arch']}:{r['training']}" in only]
    return rows


def _beta_of(paper_row: dict, dataset: str) -> float:
    """The row's selected beta from Table 1 (the SN setting being timed)."""
    for r in reference.table1_rows(dataset):
        if (r["arch"], r["training"]) == (
            paper_row["arch"],
            paper_row["training"],
        ):
            beta = rows_lib.parse_beta(str(r["selected_beta"]))
            return 1.6 if math.isinf(beta) else beta
    raise KeyError(paper_row)


def time_row(
    table: str,
    arch: str,
    training: str,
    arrays,
    path: str,
    *,
    epochs: int,
    batch_size: int = 128,
    eval_examples: int | None = None,
) -> dict:
    """Times one row of ``table2`` or ``table3`` and records it at ``path``.

    Where the paper's Table 1 selected beta = inf, SN is timed at beta = 1.6
    (any finite beta costs the same; power iteration runs at every beta).
    """
    dataset = arrays.dataset
    paper_row = next(
        r
        for r in _paper_rows(table, dataset, ())
        if (r["arch"], r["training"]) == (arch, training)
    )
    row = rows_lib.Row(dataset, arch, training)
    beta = _beta_of(paper_row, dataset)
    logging.info("%s %s beta=%s", table, row.key, beta)
    if table == "table2":
        result = timing.table2_row(
            row,
            beta,
            arrays.x_train,
            arrays.y_train,
            arrays.c2,
            epochs=epochs,
            batch_size=batch_size,
        )
    else:
        result = timing.table3_row(
            row,
            beta,
            arrays,
            epochs=epochs,
            batch_size=batch_size,
            eval_examples=eval_examples,
        )
    result.update(
        epochs=epochs,
        batch_size=batch_size,
        train_examples=len(arrays.x_train),
        paper_ratio=paper_row["ratio"],
    )
    store.write_json_atomic(path, result)
    return result


def run_table(
    table: str,
    data: dict,
    output_dir: str,
    *,
    epochs: int,
    batch_size: int = 128,
    only: tuple[str, ...] = (),
    eval_examples: int | None = None,
    engine=None,
) -> str:
    """Runs the unfinished rows of ``table2`` or ``table3``; returns Markdown.

    Args:
        table: ``"table2"`` or ``"table3"``.
        data: how every run loads its arrays: ``dataset`` and optionally
            ``data_dir``, ``source``, ``train_examples`` (see
            :func:`nsr_tf.sweep.tasks.sweep_data`).
        output_dir: where rows and the Markdown table go.
        epochs, batch_size, eval_examples: the budget of each row.
        only: rows named ``arch:training`` (empty: all).
        engine: runs the rows (default: in this process).

    Each finished row is recorded atomically in
    ``OUT/<table>/<dataset>/<arch>/<training>.json`` and skipped on rerun.
    """
    dataset = data["dataset"]
    data_kwargs = {k: v for k, v in data.items() if k != "dataset"}
    tasks = []
    for paper_row in _paper_rows(table, dataset, only):
        row = rows_lib.Row(dataset, paper_row["arch"], paper_row["training"])
        path = os.path.join(output_dir, table, f"{row.key}.json")
        kwargs = dict(
            table=table,
            dataset=dataset,
            arch=row.arch,
            training=row.training,
            path=path,
            data=data_kwargs,
            epochs=epochs,
            batch_size=batch_size,
            eval_examples=eval_examples,
        )
        tasks.append(
            engine_lib.Task(
                f"{table}/{row.key}",
                "nsr_tf.sweep.tasks:timing_row",
                kwargs,
                record=path,
            )
        )
    result = (engine or engine_lib.InProcessEngine()).run(tasks)
    lines = [
        _markdown_line(
            table,
            rows_lib.Row(dataset, t.kwargs["arch"], t.kwargs["training"]),
            store.read_json(t.record),
        )
        for t in tasks
        if os.path.exists(t.record)
    ]
    header = {
        "table2": "| Architecture | Training | no SN (s) | SN (s) | ratio | "
        "paper ratio |\n|---|---|---|---|---|---|",
        "table3": "| Architecture | Training | ratio operator/kernel | "
        "paper ratio | conv σ operator | conv σ kernel | test acc operator | "
        "test acc kernel |\n|---|---|---|---|---|---|---|---|",
    }[table]
    text = (
        f"## {table.capitalize()} — {dataset}\n\n{header}\n"
        + "\n".join(lines)
        + "\n"
    )
    store.write_text_atomic(
        os.path.join(output_dir, f"{table}_{dataset}.md"), text
    )
    result.raise_on_failure()
    return text


def _markdown_line(table, row, r) -> str:
    arch = rows_lib.ARCH_LABELS[row.arch]
    training = rows_lib.TRAINING_LABELS[row.training]
    if table == "table2":
        return (
            f"| {arch} | {training} | {r['no_sn_seconds']:.1f} | "
            f"{r['sn_seconds']:.1f} | {r['ratio']:.2f} | "
            f"{r['paper_ratio']:.2f} |"
        )
    sig = lambda v: ", ".join(f"{s:.2f}" for s in v)  # noqa: E731
    return (
        f"| {arch} | {training} | {r['ratio']:.2f} | {r['paper_ratio']:.2f} | "
        f"{sig(r['operator_conv_sigmas'])} | {sig(r['kernel_conv_sigmas'])} | "
        f"{r['operator_test_acc']:.2f} | {r['kernel_test_acc']:.2f} |"
    )
