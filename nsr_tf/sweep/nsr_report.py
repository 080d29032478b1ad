"""The NSR paper's Fig. 1 report: the AUC table and the AUC orderings."""

from __future__ import annotations

from nsr_tf.sweep.nsr_specs import PAPER_LABELS
from nsr_tf.sweep.nsr_specs import PAPER_ORDER


def measured_order(records: dict[str, dict]) -> list[str]:
    """Model names by AUC, best first."""
    return sorted(records, key=lambda n: -records[n]["auc"])


def auc_table(records: dict[str, dict]) -> str:
    """Markdown AUC table (AUC relative to AT) and the AUC orderings."""
    at = records.get("at", {}).get("auc")
    lines = [
        "| Model | init | epochs | penalty scale | clean test acc "
        "| acc at ε_x=0, max ε_w | AUC | AUC vs AT | certified AUC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rec in records.items():
        rel = f"{100 * (rec['auc'] / at - 1):+.1f}%" if at else "–"
        scale = rec["config"].get("penalty_scale")
        scale = "–" if scale is None else f"{scale:g}"
        cert = rec.get("certified_auc")
        cert = "–" if cert is None else f"{cert:.3f}"
        lines.append(
            f"| {PAPER_LABELS[name]} | {rec['init']} | {rec['epochs']} | "
            f"{scale} | {rec['clean_test_acc']:.3f} | "
            f"{rec['weight_only_acc']:.3f} | {rec['auc']:.3f} | {rel} "
            f"| {cert} |"
        )
    paper = [n for n in PAPER_ORDER if n in records]
    ours = [n for n in measured_order(records) if n in PAPER_ORDER]
    lines += [
        "",
        "AUC ordering, measured: " + " > ".join(PAPER_LABELS[n] for n in ours),
        "AUC ordering, paper: "
        + " > ".join(PAPER_LABELS[n] for n in paper)
        + " (AT+β is the paper's best, Fig. 1e)",
    ]
    return "\n".join(lines) + "\n"
