"""Flags shared by the experiment scripts (defined by the script's call).

Every script checks all its flags first, in :func:`validate`, before it
writes anything (its ``flags_<script>.txt`` included): a bad flag, missing
data files or a result directory of other settings end the process with a
one-line error and exit status 1, never a traceback.
"""

import math
import os
import sys

from absl import flags

FLAGS = flags.FLAGS


def define_timing_flags(*, default_epochs: int, dataset: str | None = None):
    flags.DEFINE_enum(
        "dataset", dataset, ["mnist", "cifar10", "svhn"], "Dataset."
    )
    flags.DEFINE_string("output_dir", "runs/timing", "Where files go.")
    flags.DEFINE_integer("epochs", default_epochs, "Epochs (paper: 40).")
    flags.DEFINE_integer("batch_size", 128, "Batch size.")
    flags.DEFINE_integer("train_examples", None, "Use the first N examples.")
    flags.DEFINE_list("rows", [], "Only these rows, as arch:training.")
    flags.DEFINE_string("data_dir", None, "Official files or tfds data dir.")
    flags.DEFINE_enum("source", "auto", ["auto", "files", "tfds"], "Source.")
    flags.DEFINE_bool(
        "overwrite", False, "Redo rows whose records have other settings."
    )
    if dataset is None:
        flags.mark_flags_as_required(["dataset"])


def validate(check, *args, **kwargs):
    """Runs ``check``; a ``ValueError`` from it exits with one line.

    Call it first in ``main``, with a function that checks every flag (and
    whatever else can be checked before work starts) and returns what the
    script needs. Nothing may be written before it returns.
    """
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        message = " ".join(str(exc).split())
        sys.exit(f"FATAL Flags error: {message}")


def check_positive(*names: str) -> None:
    """Each named integer flag is None or >= 1."""
    for name in names:
        value = FLAGS[name].value
        if value is not None and value < 1:
            raise ValueError(
                f"`--{name}` must be >= 1. Received: --{name}={value}"
            )


def parse_floats(name: str, *, minimum: float = 0.0) -> tuple[float, ...]:
    """A list flag of finite floats >= ``minimum``."""
    texts = FLAGS[name].value or []
    try:
        values = tuple(float(t) for t in texts)
    except ValueError:
        values = ()
    if len(values) != len(texts) or not all(
        math.isfinite(v) and v >= minimum for v in values
    ):
        raise ValueError(
            f"`--{name}` must be a comma-separated list of finite numbers "
            f">= {minimum:g}. Received: --{name}={','.join(texts)}"
        )
    return values


def parse_betas(name: str, texts) -> tuple[float, ...]:
    """Betas of a list flag (``inf`` or numbers > 0)."""
    from nsr_tf.sweep import rows as rows_lib

    try:
        values = tuple(rows_lib.parse_beta(t) for t in texts)
    except ValueError:
        values = None
    if values is None or any(math.isnan(v) for v in values):
        raise ValueError(
            f"`--{name}` must list betas: numbers > 0 or inf. "
            f"Received: --{name}={','.join(texts)}"
        )
    return values


def check_data(dataset: str) -> str:
    """The flags' data source exists (no fallback); returns its label."""
    from nsr_tf import data

    return data.describe_source(
        dataset, data_dir=FLAGS.data_dir, source=FLAGS.source
    )


def check_dirs(name: str, directories) -> None:
    missing = [d for d in directories if not os.path.isdir(d)]
    if missing:
        raise ValueError(
            f"`--{name}` must name existing directories. Received: "
            f"--{name}={','.join(directories)} ({', '.join(missing)} missing)"
        )


def load_arrays():
    """The dataset of the flags, cut to ``--train_examples``."""
    from nsr_tf.sweep import presets
    from nsr_tf.sweep.runner import SweepData

    preset = presets.Preset(
        "timing", epochs=FLAGS.epochs, train_examples=FLAGS.train_examples
    )
    return SweepData.load(
        FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        source=FLAGS.source,
        preset=preset,
    )


def save_flags(output_dir: str, script: str) -> str:
    """Writes every flag value of this run to ``output_dir/flags_<script>.txt``.

    One file per script, rewritten on each invocation, so a result directory
    records the command that produced it. Call it after :func:`validate`.
    """
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"flags_{script}.txt")
    with open(path, "w") as f:
        f.write(FLAGS.flags_into_string())
    return path
