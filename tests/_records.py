"""A minimal Table 1 run record, for tests of selection, tables and resume."""


def record(arch, training, beta, val, train=0.9, test=0.8):
    """The fields tables and resume read, for an MNIST run."""
    key = f"mnist/{arch}/{training}"
    return {
        "run_key": f"{key}/beta_{beta}",
        "row_key": key,
        "beta": beta,
        "metrics": {"train_acc": train, "val_acc": val, "test_acc": test},
    }
