"""Flags shared by the experiment scripts (defined by the script's call)."""

import os

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
    if dataset is None:
        flags.mark_flags_as_required(["dataset"])


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
    records the command that produced it.
    """
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"flags_{script}.txt")
    with open(path, "w") as f:
        f.write(FLAGS.flags_into_string())
    return path
