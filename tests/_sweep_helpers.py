"""Shared by the sweep tests: a one-epoch preset and a minimal run record."""

from nsr_tf import sweep

# One epoch on 256 MNIST images at beta in {inf, 2}: the sweep tests' budget.
TINY = sweep.Preset(
    "tiny",
    epochs=1,
    batch_size=64,
    train_examples=256,
    eval_examples=200,
    early_stopping=False,
    betas=(float("inf"), 2.0),
)


def record(arch, training, beta, val, train=0.9, test=0.8):
    """The fields tables and resume read, for an MNIST run."""
    key = f"mnist/{arch}/{training}"
    return {
        "run_key": f"{key}/beta_{beta}",
        "row_key": key,
        "beta": beta,
        "metrics": {"train_acc": train, "val_acc": val, "test_acc": test},
    }
