"""The README's Results section, regenerated from committed records.

The README holds generated blocks between markers
``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``; everything else
in it is prose written by hand. :func:`update` rewrites every block from the
records under ``results/``, so the numbers a reader sees are always the
ones the records hold (``python -m experiments.readme_results``).
"""

from __future__ import annotations

import os
import re

from nsr_tf.sweep import nsr
from nsr_tf.sweep import presets
from nsr_tf.sweep import report
from nsr_tf.sweep import rows as rows_lib
from nsr_tf.sweep import store
from nsr_tf.sweep import table1
from nsr_tf.sweep.report import fmt

#: The README's Table 1 blocks: ``(block name, dataset, preset)``; each
#: reads the records under ``results/<block name>`` and shows the rows of
#: the preset's architectures.
TABLE1_BLOCKS = (
    ("table1_mnist", "mnist", "mlp"),
    ("table1_cifar10", "cifar10", "mlp"),
    ("table1_mnist_elunet", "mnist", "elunet"),
)
NOTHING_YET = "(no run finished yet)\n"


def splice(text: str, name: str, block: str) -> str:
    """``text`` with the block ``name`` replaced by ``block``.

    Raises:
        ValueError: when ``text`` lacks the block's two markers.
    """
    begin, end = f"<!-- results:{name} -->", f"<!-- /results:{name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(
            f"`text` must hold the markers {begin} and {end}. "
            f"Received: text without them"
        )
    return pattern.sub(
        lambda _: f"{begin}\n{block.rstrip()}\n{end}", text, count=1
    )


def _epochs(records: list[dict]) -> str:
    runs = sorted(r.get("epochs_run", 0) for r in records)
    if not runs:
        return "–"
    return str(runs[0]) if runs[0] == runs[-1] else f"{runs[0]}-{runs[-1]}"


def _gain(sn, plain) -> str:
    """Test accuracy with SN minus without, signed ("–" if either is
    missing)."""
    if sn is None or plain is None:
        return "–"
    return f"{float(sn) - float(plain):+.2f}"


def table1_block(results_dir: str, dataset: str, preset: str = "mlp") -> str:
    """Markdown Table 1 for the rows ``preset`` trains, from the records in
    ``results_dir``.

    Per row: ours without SN (β = ∞) and with the β validation selected,
    the certified l2 accuracy at that β, the test-accuracy gain of SN
    (selected β minus β = ∞) for ours and the paper's, the runs done and
    their epochs, and the paper's numbers. "runs" counts the betas done
    of those ``preset`` plans for the row.
    """
    planned = {}
    for row, _ in table1.plan(dataset, presets.get_preset(preset)):
        planned[row.key] = planned.get(row.key, 0) + 1
    records = store.read_records([results_dir], prefix=f"{dataset}/")
    table = report.table_rows(dataset, records)
    by_row = report.records_by_row(records)
    lines = [
        "| Architecture | Training | Train / Test (β = ∞) | Train / Test (SN) "
        "| β | certified l2 (SN) | SN gain, test: ours / paper | runs "
        "| epochs | paper: Train / Test / Train (SN) / Test (SN) / β |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row, r in zip(rows_lib.table1_rows(dataset), table, strict=True):
        key = row.key
        if key not in planned:
            continue
        paper = report.paper_cell(r)
        lines.append(
            f"| {r['architecture']} | {r['training']} "
            f"| {fmt(r['train_acc'])} / {fmt(r['test_acc'])} "
            f"| {fmt(r['train_acc_sn'])} / {fmt(r['test_acc_sn'])} "
            f"| {fmt(r['selected_beta'])} "
            f"| {fmt(r.get('certified_test_acc_sn'))} "
            f"| {_gain(r['test_acc_sn'], r['test_acc'])} / "
            f"{_gain(r['paper_test_acc_sn'], r['paper_test_acc'])} "
            f"| {r['betas_done']} of {planned.get(key, 0)} "
            f"| {_epochs(by_row.get(key, []))} "
            f"| {paper} |"
        )
    return "\n".join(lines) + "\n"


def fig1_block(results_dir: str) -> str:
    """The NSR Fig. 1 AUC table from the model records in ``results_dir``."""
    records = {}
    for name in nsr.CONFIGS:
        path = os.path.join(results_dir, name, "record.json")
        if os.path.exists(path):
            records[name] = store.read_json(path)
    if not records:
        return NOTHING_YET
    return nsr.auc_table(records)


def blocks(results_dir: str) -> dict[str, str]:
    """Every generated block by name ("no run finished yet" where a
    reproduction has no records)."""
    out = {}
    for name, dataset, preset in TABLE1_BLOCKS:
        directory = os.path.join(results_dir, name)
        out[name] = (
            table1_block(directory, dataset, preset)
            if os.path.isdir(directory)
            else NOTHING_YET
        )
    directory = os.path.join(results_dir, "nsr_fig1")
    out["nsr_fig1"] = (
        fig1_block(directory) if os.path.isdir(directory) else NOTHING_YET
    )
    return out


def update(readme_path: str, results_dir: str) -> list[str]:
    """Rewrites the README's generated blocks; returns their names.

    Blocks without markers in the README are skipped (and not returned).
    """
    with open(readme_path) as f:
        text = f.read()
    done = []
    for name, block in blocks(results_dir).items():
        if f"<!-- results:{name} -->" in text:
            text = splice(text, name, block)
            done.append(name)
    store.write_text_atomic(readme_path, text)
    return done


__all__ = ["blocks", "fig1_block", "splice", "table1_block", "update"]
