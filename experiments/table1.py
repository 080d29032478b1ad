r"""Table 1 of Farnia et al. (2019): every row of a dataset, every beta.

Usage:
  python -m experiments.table1 --dataset=mnist --preset=smoke \
      --output_dir=runs/table1_smoke
  # shard across machines, then merge:
  python -m experiments.table1 --dataset=svhn --num_shards=2 --shard_index=0 ...
  python -m experiments.table1 --dataset=svhn --merge_only \
      --merge_dirs=out0,out1 --output_dir=out
  # one Ray task per run, on a local Ray or a cluster (--ray_address=auto):
  python -m experiments.table1 --dataset=mnist --preset=smoke --engine=ray
"""

from absl import app
from absl import flags
from absl import logging

from experiments import _common
from nsr_tf import sweep
from nsr_tf.sweep import table1

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", None, ["mnist", "cifar10", "svhn"], "Dataset.")
flags.DEFINE_string("output_dir", "runs/table1", "Where every file goes.")
flags.DEFINE_enum("preset", "paper", list(sweep.PRESETS), "Budget preset.")
flags.DEFINE_integer("epochs", None, "Override the preset's max epochs.")
flags.DEFINE_integer("batch_size", None, "Override the batch size.")
flags.DEFINE_integer("train_examples", None, "Use the first N train examples.")
flags.DEFINE_integer(
    "eval_examples", None, "Evaluate on N train/test examples."
)
flags.DEFINE_bool("early_stopping", None, "SN paper early stopping (0.999).")
flags.DEFINE_enum(
    "optimizer", None, list(sweep.OPTIMIZERS), "Override every row's optimizer."
)
flags.DEFINE_float("learning_rate", None, "Override the learning rate.")
flags.DEFINE_list("betas", None, "Beta grid for every row, e.g. inf,1,2.")
flags.DEFINE_list("rows", [], "Only these rows, as arch:training.")
flags.DEFINE_string("data_dir", None, "Official files or tfds data dir.")
flags.DEFINE_enum("source", "auto", ["auto", "files", "tfds"], "Data source.")
flags.DEFINE_integer(
    "shard_index", None, "This shard (default: $SLURM_ARRAY_TASK_ID or 0)."
)
flags.DEFINE_integer(
    "num_shards", None, "Shards (default: $SLURM_ARRAY_TASK_COUNT or 1)."
)
flags.DEFINE_bool("merge_only", False, "Only assemble the table.")
flags.DEFINE_list("merge_dirs", [], "Output dirs of other shards to merge.")
flags.DEFINE_integer("seed", 0, "Seed of every run (the paper used 0).")
flags.DEFINE_integer("verbose", 2, "Keras fit verbosity (progress).")
flags.DEFINE_bool("random_labels", False, "Random labels (Fig. 3-4 runs).")
flags.DEFINE_bool(
    "overwrite", False, "Redo runs whose records have other settings."
)
_common.define_engine_flags()
flags.mark_flags_as_required(["dataset"])


def _run_kwargs(num_shards, shard_index):
    return dict(
        data_dir=FLAGS.data_dir,
        source=FLAGS.source,
        only=tuple(FLAGS.rows),
        shard_index=shard_index,
        num_shards=num_shards,
        seed=FLAGS.seed,
        random_labels=FLAGS.random_labels,
        overwrite=FLAGS.overwrite,
    )


def check_flags():
    """Every flag, the data and the resume state.

    Returns:
        ``(preset, run_kwargs, engine)``: the budget, the arguments of
        :func:`nsr_tf.sweep.run_table1` (the shard resolved, see
        :func:`experiments._common.resolve_shards`) and the sweep engine.
    """
    _common.check_positive(
        "epochs", "batch_size", "train_examples", "eval_examples"
    )
    betas = FLAGS.betas and _common.parse_betas("betas", FLAGS.betas)
    preset = sweep.get_preset(
        FLAGS.preset,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        train_examples=FLAGS.train_examples,
        eval_examples=FLAGS.eval_examples,
        early_stopping=FLAGS.early_stopping,
        betas=betas,
        optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate,
    )
    num_shards, shard_index = _common.resolve_shards(
        FLAGS.num_shards, FLAGS.shard_index
    )
    run_kwargs = _run_kwargs(num_shards, shard_index)
    runs = sweep.plan(FLAGS.dataset, preset, only=tuple(FLAGS.rows))
    if not runs and not FLAGS.merge_only:
        raise ValueError(
            f"`--preset` and `--rows` must plan at least one {FLAGS.dataset} "
            f"run. Received: --preset={FLAGS.preset} "
            f"--rows={','.join(FLAGS.rows)} (the preset trains "
            f"{preset.archs or 'every architecture'})"
        )
    sweep.shard(runs, shard_index, num_shards)
    engine = _common.make_engine()
    if FLAGS.merge_only:
        _common.check_dirs("merge_dirs", FLAGS.merge_dirs)
        table1.merged_records(
            FLAGS.dataset, FLAGS.output_dir, input_dirs=tuple(FLAGS.merge_dirs)
        )
    else:
        sweep.check_resume(
            FLAGS.dataset, FLAGS.output_dir, preset, **run_kwargs
        )
    return preset, run_kwargs, engine


def main(argv):
    del argv
    preset, run_kwargs, engine = _common.validate(check_flags)
    # A merge keeps the sweep's own flags file beside its own.
    _common.save_flags(
        FLAGS.output_dir, "table1_merge" if FLAGS.merge_only else "table1"
    )
    if FLAGS.merge_only:
        table = sweep.write_table(
            FLAGS.dataset, FLAGS.output_dir, input_dirs=tuple(FLAGS.merge_dirs)
        )
    else:
        table = sweep.run_table1(
            FLAGS.dataset,
            FLAGS.output_dir,
            preset,
            verbose=FLAGS.verbose,
            engine=engine,
            **run_kwargs,
        )
    logging.info("wrote table1_%s with %d rows", FLAGS.dataset, len(table))
    with open(f"{FLAGS.output_dir}/table1_{FLAGS.dataset}.md") as f:
        print(f.read())


if __name__ == "__main__":
    app.run(main)
