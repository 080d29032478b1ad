"""Assembles Table 1 from run records: beta selection and the three files.

beta is selected per row by the highest validation accuracy under the
training attack over every beta of the grid, infinity included (spec
``sn_paper.md`` §6). Ties go to the larger beta (weaker regularization), a
deterministic rule of ours: the authors' tie-break was Python 2 dict order.
"""

from __future__ import annotations

import csv
import io
import math

from nsr_tf import reference
from nsr_tf.sweep import certified
from nsr_tf.sweep import rows as rows_lib

COLUMNS = (
    "architecture",
    "training",
    "train_acc",
    "test_acc",
    "train_acc_sn",
    "test_acc_sn",
    "selected_beta",
    "certified_test_acc_sn",
    "betas_done",
    "paper_train_acc",
    "paper_test_acc",
    "paper_train_acc_sn",
    "paper_test_acc_sn",
    "paper_selected_beta",
)


def _beta(record) -> float:
    return rows_lib.parse_beta(record["beta"])


def records_by_row(records: list[dict]) -> dict[str, list[dict]]:
    """Row key -> the records of that row's runs."""
    by_row = {}
    for record in records:
        by_row.setdefault(record["row_key"], []).append(record)
    return by_row


def select_beta(records: list[dict]) -> dict | None:
    """The record with the best validation accuracy (ties: larger beta)."""
    if not records:
        return None
    return max(records, key=lambda r: (r["metrics"]["val_acc"], _beta(r)))


def table_rows(dataset: str, records: list[dict]) -> list[dict]:
    """One dict per Table 1 row of ``dataset`` with ours beside the paper's."""
    by_row = records_by_row(records)
    paper = {
        (r["arch"], r["training"]): r for r in reference.table1_rows(dataset)
    }
    out = []
    for row in rows_lib.table1_rows(dataset):
        done = by_row.get(row.key, [])
        baseline = [r for r in done if math.isinf(_beta(r))]
        best = select_beta(done)
        ref = paper[(row.arch, row.training)]
        metric = lambda rec, k: rec["metrics"][k] if rec else None  # noqa: E731
        out.append(
            {
                "architecture": rows_lib.ARCH_LABELS[row.arch],
                "training": rows_lib.TRAINING_LABELS[row.training],
                "train_acc": metric(
                    baseline[0] if baseline else None, "train_acc"
                ),
                "test_acc": metric(
                    baseline[0] if baseline else None, "test_acc"
                ),
                "train_acc_sn": metric(best, "train_acc"),
                "test_acc_sn": metric(best, "test_acc"),
                "selected_beta": best["beta"] if best else None,
                "certified_test_acc_sn": (
                    certified.at_run_eps(best) if best else None
                ),
                "betas_done": len(done),
                "paper_train_acc": ref["train_acc"],
                "paper_test_acc": ref["test_acc"],
                "paper_train_acc_sn": ref["train_acc_sn"],
                "paper_test_acc_sn": ref["test_acc_sn"],
                "paper_selected_beta": str(ref["selected_beta"]),
            }
        )
    return out


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def fmt(value) -> str:
    """A table cell: two decimals for floats, "–" for missing values."""
    return _fmt(value)


def paper_cell(row: dict) -> str:
    """The paper's "Train / Test / Train (SN) / Test (SN) / β" of a row."""
    return " / ".join(
        _fmt(row[k])
        for k in (
            "paper_train_acc",
            "paper_test_acc",
            "paper_train_acc_sn",
            "paper_test_acc_sn",
            "paper_selected_beta",
        )
    )


def to_markdown(dataset: str, table: list[dict], *, note: str = "") -> str:
    """Markdown: ours (train/test without SN, with SN, beta) | the paper's."""
    lines = [
        f"## Table 1 — {dataset}",
        "",
        "| Architecture | Training | Train acc | Test acc | Train acc (SN) "
        "| Test acc (SN) | β | Certified l2 (SN) | paper: Train / Test / "
        "Train (SN) / Test (SN) / β |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        star = "*" if r["selected_beta"] == "inf" else ""
        paper = paper_cell(r)
        lines.append(
            f"| {r['architecture']} | {r['training']} | {_fmt(r['train_acc'])}"
            f" | {_fmt(r['test_acc'])} | {_fmt(r['train_acc_sn'])}"
            f" | {_fmt(r['test_acc_sn'])}{star} | {_fmt(r['selected_beta'])}"
            f" | {_fmt(r.get('certified_test_acc_sn'))} | {paper} |"
        )
    lines += [
        "",
        "Accuracies of adversarially trained rows are under the training "
        "attack (predicted labels), as the paper reports them. "
        "\\* β = ∞ won the validation. Certified l2: test accuracy proved "
        "by the l2 Lipschitz-margin certificate (docs/certificates.md) at the "
        "row's l2 eps (the l2 PGM budget for other rows).",
    ]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def runs_markdown(dataset: str, records: list[dict]) -> str:
    """Markdown: every run of every row, one line per beta.

    Per run: the epochs it trained, train / validation / test accuracy
    (under the training attack), the certified l2 test accuracy at the
    run's l2 eps, the Lipschitz bound the certificate used and the training
    time; the beta validation selects for its row is marked.
    """
    by_row = records_by_row(records)
    lines = [
        f"## Table 1 runs — {dataset}",
        "",
        "| Row | β | epochs | Train | Val | Test | Certified l2 "
        "| Lipschitz bound | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows_lib.table1_rows(dataset):
        done = sorted(by_row.get(row.key, []), key=_beta)
        best = select_beta(done)
        label = (
            f"{rows_lib.ARCH_LABELS[row.arch]} "
            f"{rows_lib.TRAINING_LABELS[row.training]}"
        )
        for record in done:
            metrics = record["metrics"]
            lipschitz = (record.get("certified") or {}).get("lipschitz")
            seconds = record.get("train_seconds")
            lines.append(
                f"| {label} | {record['beta']}"
                + (" (selected)" if record is best else "")
                + f" | {record.get('epochs_run', '–')}"
                + "".join(
                    f" | {metrics[k]:.3f}"
                    for k in ("train_acc", "val_acc", "test_acc")
                )
                + f" | {_fmt3(certified.at_run_eps(record))}"
                + f" | {_fmt3(lipschitz)}"
                + f" | {'–' if seconds is None else f'{seconds:.0f}'} |"
            )
    lines += [
        "",
        "Certified l2: test accuracy proved by the l2 Lipschitz-margin "
        "certificate at the run's l2 eps (docs/certificates.md).",
    ]
    return "\n".join(lines) + "\n"


def _fmt3(value) -> str:
    """Three decimals (whole numbers with separators from 100 on), or
    "–"."""
    if value is None:
        return "–"
    return f"{value:.3f}" if value < 100 else f"{value:,.0f}"


def to_csv(table: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()
