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
    """The dataset of the flags, cut to ``--train_examples``.

    Loaded as every run of a timing table loads it (:func:`data_spec`),
    cached: an in-process sweep after the check does not load it again.
    """
    from nsr_tf.sweep import tasks

    return tasks.sweep_data(**data_spec())


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


def define_engine_flags():
    """``--engine`` and the Ray flags of every sweep script."""
    flags.DEFINE_enum(
        "engine",
        "inprocess",
        ["inprocess", "ray"],
        "Run the sweep in this process or as Ray tasks (pip install "
        '"nsr_tf[ray]").',
    )
    flags.DEFINE_string(
        "ray_address",
        None,
        "Ray cluster to connect to (e.g. auto); unset: a local Ray limited "
        "to this machine's cores.",
    )
    flags.DEFINE_integer(
        "ray_cpus_per_run",
        1,
        "CPUs (and TensorFlow threads) each Ray run declares.",
        lower_bound=1,
    )
    flags.DEFINE_float(
        "ray_gpus_per_run", 0.0, "GPUs each Ray run declares.", lower_bound=0
    )
    flags.DEFINE_integer(
        "ray_max_retries",
        3,
        "Retries of a Ray run whose worker died.",
        lower_bound=0,
    )


def make_engine():
    """The sweep engine the engine flags ask for."""
    from nsr_tf.sweep import engine

    return engine.make_engine(
        FLAGS.engine,
        address=FLAGS.ray_address,
        cpus_per_run=FLAGS.ray_cpus_per_run,
        gpus_per_run=FLAGS.ray_gpus_per_run,
        max_retries=FLAGS.ray_max_retries,
    )


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"`{name}` must be an integer. Received: {name}={value!r}"
        ) from None


def resolve_shards(num_shards, shard_index) -> tuple[int, int]:
    """``(num_shards, shard_index)``: the flags, else a SLURM job array's.

    Unset flags (None) default to ``SLURM_ARRAY_TASK_COUNT`` and
    ``SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN`` when set, else to one
    shard. Both are validated.
    """
    if num_shards is None:
        num_shards = _env_int("SLURM_ARRAY_TASK_COUNT") or 1
    if shard_index is None:
        task_id = _env_int("SLURM_ARRAY_TASK_ID")
        task_min = _env_int("SLURM_ARRAY_TASK_MIN") or 0
        shard_index = 0 if task_id is None else task_id - task_min
    from nsr_tf.sweep import table1

    table1.check_shard(shard_index, num_shards)
    return num_shards, shard_index


def data_spec() -> dict:
    """How each run of a timing table loads the flags' dataset."""
    return dict(
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        source=FLAGS.source,
        train_examples=FLAGS.train_examples,
    )


def timing_kwargs(**extra) -> dict:
    """The Table 2/3 library arguments of the timing flags (plus ``extra``)."""
    return dict(
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        only=tuple(FLAGS.rows),
        overwrite=FLAGS.overwrite,
        **extra,
    )


def run_timing_table(table: str, **extra) -> None:
    """The whole ``main`` of the Table 2/3 scripts.

    Checks every flag, the data and the resume state first (one-line
    error), then saves the flags and runs the table through the engine.
    """
    from nsr_tf.sweep import tables23

    def check():
        check_positive("epochs", "batch_size", "train_examples")
        engine = make_engine()
        tables23.check_rows(table, FLAGS.dataset, tuple(FLAGS.rows))
        check_data(FLAGS.dataset)
        arrays = load_arrays()
        tables23.check_resume(
            table, arrays, FLAGS.output_dir, **timing_kwargs(**extra)
        )
        return engine

    engine = validate(check)
    save_flags(FLAGS.output_dir, table)
    print(
        tables23.run_table(
            table,
            data_spec(),
            FLAGS.output_dir,
            engine=engine,
            **timing_kwargs(**extra),
        )
    )
