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


def row_settings(
    table: str, row, beta: float, arrays, *, epochs, batch_size, eval_examples
) -> dict:
    """Everything that affects one Table 2/3 row's result (its record's)."""
    import nsr_tf

    return {
        "table": table,
        "dataset": arrays.dataset,
        "data_source": getattr(arrays, "data_source", ""),
        "row": row.key,
        "beta": beta,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "train_examples": len(arrays.x_train),
        "eval_examples": eval_examples if table == "table3" else None,
        "seed": 0,
        "nsr_tf_version": nsr_tf.__version__,
    }


def check_rows(table: str, dataset: str, only: tuple[str, ...]) -> None:
    """Every name of ``only`` is a row of ``table`` for ``dataset``."""
    known = sorted(
        f"{r['arch']}:{r['training']}" for r in _paper_rows(table, dataset, ())
    )
    unknown = [name for name in only if name not in known]
    if unknown or not known:
        raise ValueError(
            f"`rows` must name rows of the {table} {dataset} table "
            f"({known}). Received: rows={unknown or list(only)}"
        )


def _row(table: str, paper_row: dict, arrays, budget: dict) -> tuple:
    row = rows_lib.Row(arrays.dataset, paper_row["arch"], paper_row["training"])
    beta = _beta_of(paper_row, arrays.dataset)
    settings = row_settings(table, row, beta, arrays, **budget)
    return row, beta, settings


def check_resume(
    table: str,
    arrays,
    output_dir: str,
    *,
    epochs: int,
    batch_size: int = 128,
    only: tuple[str, ...] = (),
    eval_examples: int | None = None,
    overwrite: bool = False,
) -> list[tuple]:
    """The rows to run with their settings; writes nothing.

    Returns:
        ``(paper_row, row, beta, settings, record_path)`` per row.

    Raises:
        ValueError: for rows not in the table.
        SettingsMismatchError: naming every row whose record has other
            settings (unless ``overwrite``).
    """
    check_rows(table, arrays.dataset, only)
    budget = dict(
        epochs=epochs, batch_size=batch_size, eval_examples=eval_examples
    )
    rows = []
    for paper_row in _paper_rows(table, arrays.dataset, only):
        row, beta, settings = _row(table, paper_row, arrays, budget)
        path = os.path.join(output_dir, table, f"{row.key}.json")
        rows.append((paper_row, row, beta, settings, path))
    store.check_resumable(
        [(f"{table} {r.key}", path, st) for _, r, _, st, path in rows],
        overwrite=overwrite,
    )
    return rows


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
    overwrite: bool = False,
) -> dict:
    """Times one row of ``table2`` or ``table3`` and records it at ``path``.

    The record holds the row's ``settings`` and their ``fingerprint``; a
    record of the same settings is reused, a corrupt one set aside and one
    of other settings is an error unless ``overwrite``
    (:func:`nsr_tf.sweep.store.reuse_record`). Where the paper's Table 1
    selected beta = inf, SN is timed at beta = 1.6 (any finite beta costs
    the same; power iteration runs at every beta).
    """
    paper_row = next(
        r
        for r in _paper_rows(table, arrays.dataset, ())
        if (r["arch"], r["training"]) == (arch, training)
    )
    row, beta, settings = _row(
        table,
        paper_row,
        arrays,
        dict(epochs=epochs, batch_size=batch_size, eval_examples=eval_examples),
    )
    name = f"{table} {row.key}"
    result = store.reuse_record(path, settings, name=name, overwrite=overwrite)
    if result is not None:
        return result
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
    result = store.with_settings(result, settings)
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
    overwrite: bool = False,
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
        overwrite: redo rows whose records have other settings.
        engine: runs the rows (default: in this process).

    Each finished row is recorded atomically in
    ``OUT/<table>/<dataset>/<arch>/<training>.json`` with its ``settings``
    and their ``fingerprint``, and reused on rerun only when they match.
    Before any row runs, every record of other settings is reported in one
    ``SettingsMismatchError`` (:func:`check_resume`) unless ``overwrite``
    redoes them; a corrupt record is set aside and redone
    (:func:`time_row`). A row that fails is reported, the table is written
    from the others, then :class:`~nsr_tf.sweep.engine.SweepFailedError`
    is raised.
    """
    from nsr_tf.sweep import tasks as tasks_lib

    data_kwargs = {k: v for k, v in data.items() if k != "dataset"}
    arrays = tasks_lib.sweep_data(data["dataset"], **data_kwargs)
    rows = check_resume(
        table,
        arrays,
        output_dir,
        epochs=epochs,
        batch_size=batch_size,
        only=only,
        eval_examples=eval_examples,
        overwrite=overwrite,
    )
    tasks = [
        engine_lib.Task(
            f"{table}/{row.key}",
            "nsr_tf.sweep.tasks:timing_row",
            dict(
                table=table,
                dataset=arrays.dataset,
                arch=row.arch,
                training=row.training,
                path=path,
                data=data_kwargs,
                epochs=epochs,
                batch_size=batch_size,
                eval_examples=eval_examples,
                overwrite=overwrite,
            ),
            record=path,
            settings=settings,
        )
        for _, row, _, settings, path in rows
    ]
    result = (engine or engine_lib.InProcessEngine()).run(tasks)
    lines = [
        _markdown_line(table, row, store.read_json(path))
        for _, row, _, _, path in rows
        if os.path.exists(path)
    ]
    header = {
        "table2": "| Architecture | Training | no SN (s) | SN (s) | ratio | "
        "paper ratio |\n|---|---|---|---|---|---|",
        "table3": "| Architecture | Training | ratio operator/kernel | "
        "paper ratio | conv σ operator | conv σ kernel | test acc operator | "
        "test acc kernel |\n|---|---|---|---|---|---|---|---|",
    }[table]
    text = (
        f"## {table.capitalize()} — {arrays.dataset}\n\n{header}\n"
        + "\n".join(lines)
        + "\n"
    )
    store.write_text_atomic(
        os.path.join(output_dir, f"{table}_{arrays.dataset}.md"), text
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
