"""Test-only sweep tasks: a worker that dies once, a run that always fails.

Workers import them by path (``tests._sweep_tasks:...``), as they import the
library's own tasks.
"""

import json
import os


def write_record(record: str, value: int, log: str | None = None) -> int:
    """Writes ``{"value": value}`` to ``record`` (and appends to ``log``)."""
    if log:
        with open(log, "a") as f:
            f.write(f"{value}\n")
    os.makedirs(os.path.dirname(record), exist_ok=True)
    with open(record, "w") as f:
        json.dump({"value": value}, f)
    return value


def dies_once(record: str, marker: str, value: int) -> int:
    """Kills its worker process on the first attempt (``marker`` absent)."""
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write("attempt 1\n")
        os._exit(1)
    return write_record(record, value)


def always_fails(record: str) -> None:
    raise ValueError(f"this run always fails ({os.path.basename(record)})")


def tf_threads(record: str) -> int:
    """TensorFlow's inter-op (``tf_Compute``) threads in this worker."""
    import tensorflow as tf

    x = tf.ones((64, 64))
    tf.matmul(x, x).numpy()
    names = [
        open(f"/proc/self/task/{t}/comm").read().strip()
        for t in os.listdir("/proc/self/task")
    ]
    return names.count("tf_Compute")
