r"""Table 2 of Farnia et al. (2019): training time with vs without SN.

Usage:
  python -m experiments.table2 --dataset=mnist --epochs=1 \
      --output_dir=runs/table2
"""

from absl import app
from absl import flags

from experiments import _common
from nsr_tf.sweep import tables23

FLAGS = flags.FLAGS
_common.define_engine_flags()
_common.define_timing_flags(default_epochs=40)


def check_flags():
    """Every flag, the data and the resume state; returns the engine."""
    _common.check_positive("epochs", "batch_size", "train_examples")
    engine = _common.make_engine()
    tables23.check_rows("table2", FLAGS.dataset, tuple(FLAGS.rows))
    _common.check_data(FLAGS.dataset)
    arrays = _common.load_arrays()
    tables23.check_resume("table2", arrays, FLAGS.output_dir, **_kwargs())
    return engine


def _kwargs():
    return dict(
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        only=tuple(FLAGS.rows),
        overwrite=FLAGS.overwrite,
    )


def main(argv):
    del argv
    engine = _common.validate(check_flags)
    _common.save_flags(FLAGS.output_dir, "table2")
    print(
        tables23.run_table(
            "table2",
            _common.data_spec(),
            FLAGS.output_dir,
            engine=engine,
            **_kwargs(),
        )
    )


if __name__ == "__main__":
    app.run(main)
