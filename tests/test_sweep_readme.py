"""The README's generated Results blocks (nsr_tf.sweep.readme)."""

import pytest

from nsr_tf.sweep import readme
from nsr_tf.sweep import store


def test_splice_replaces_only_the_named_block():
    text = (
        "intro\n<!-- results:a -->\nold a\n<!-- /results:a -->\n"
        "middle\n<!-- results:b -->\nold b\n<!-- /results:b -->\nend\n"
    )
    out = readme.splice(text, "a", "new a\n")
    assert "new a" in out and "old a" not in out
    assert "old b" in out and out.startswith("intro\n")
    assert out.endswith("middle\n<!-- results:b -->\nold b\n"
                        "<!-- /results:b -->\nend\n")  # fmt: skip
    # idempotent
    assert readme.splice(out, "a", "new a\n") == out


def test_splice_without_markers_raises():
    with pytest.raises(ValueError, match="results:c"):
        readme.splice("no markers", "c", "x")


def _record(beta, val, test, epochs):
    key = f"mnist/mlp1/erm/beta_{beta}"
    return {
        "run_key": key,
        "row_key": "mnist/mlp1/erm",
        "beta": beta,
        "epochs_run": epochs,
        "metrics": {"train_acc": 1.0, "val_acc": val, "test_acc": test},
    }


def test_table1_block_reads_the_records(tmp_path):
    for beta, val, test, epochs in (
        ("inf", 0.97, 0.96, 40),
        ("2", 0.98, 0.972, 55),
    ):
        store.write_json_atomic(
            store.record_path(str(tmp_path), f"mnist/mlp1/erm/beta_{beta}"),
            _record(beta, val, test, epochs),
        )
    block = readme.table1_block(str(tmp_path), "mnist")
    lines = block.splitlines()
    assert len(lines) == 2 + 8  # header, rule, 8 MLP rows
    erm = lines[2]
    assert erm.startswith(
        "| 1-layer MLP | ERM | 1.00 / 0.96 | 1.00 / 0.97 | 2 |"
    )
    # SN gain on test: ours 0.972 - 0.96, the paper's 0.98 - 0.98.
    assert "| +0.01 / +0.00 | 2 of 6 | 40-55 |" in erm
    assert "| – / +0.08 | 0 of 6 | – |" in lines[3]  # FGM: nothing run yet
    assert "| 0 of 3 |" in lines[4]  # PGM: infinity, the paper's beta, one


def test_elunet_block_lists_the_rows_its_preset_plans(tmp_path):
    block = readme.table1_block(str(tmp_path), "mnist", "elunet")
    lines = block.splitlines()[2:]
    assert [line.split(" | ")[1] for line in lines] == [
        "ERM",
        "FGM l2",
        "PGM l2",
        "WRM",
    ]
    assert all(line.startswith("| ELU-Net |") for line in lines)
    assert [line.split(" | ")[7] for line in lines] == [
        "0 of 6",
        "0 of 6",
        "0 of 3",
        "0 of 3",
    ]
