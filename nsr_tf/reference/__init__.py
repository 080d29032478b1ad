"""The papers' reported numbers, kept as data (never as code branches)."""

from __future__ import annotations

import functools
import json
import os

_DIR = os.path.dirname(__file__)


@functools.cache
def sn_paper_tables() -> dict:
    """Tables 1-3 of Farnia et al. (2019), Appendix A, as a dict.

    Keys: ``table1`` (42 rows: dataset, arch, training, train/test accuracy
    without and with SN, and the selected beta from the authors' notebooks,
    ``"inf"`` where no SN won), ``table2`` (runtime with/without SN),
    ``table3`` (operator vs kernel-method SN runtime ratio) and the conv
    sigma of the Miyato comparison (App. A.1).
    """
    with open(os.path.join(_DIR, "sn_paper_tables.json")) as f:
        return json.load(f)


def table1_rows(dataset: str | None = None) -> list[dict]:
    """The paper's Table 1 rows, optionally of one dataset only."""
    rows = sn_paper_tables()["table1"]
    return [r for r in rows if dataset is None or r["dataset"] == dataset]
