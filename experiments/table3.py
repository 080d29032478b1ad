r"""Table 3 of Farnia et al. (2019): operator SN vs kernel (Miyato) SN.

Reports the runtime ratio, the final operator sigma of every conv layer
under each method and the test accuracy under the training attack.

Usage:
  python -m experiments.table3 --dataset=cifar10 \
      --data_dir=../shared/data/cifar10 --epochs=1 --output_dir=runs/table3
"""

from absl import app
from absl import flags

from experiments import _common
from nsr_tf.sweep import tables23

FLAGS = flags.FLAGS
_common.define_engine_flags()
_common.define_timing_flags(default_epochs=40, dataset="cifar10")
flags.DEFINE_integer("eval_examples", None, "Test examples for accuracy.")


def check_flags():
    """Every flag, the data and the resume state; returns the engine."""
    _common.check_positive(
        "epochs", "batch_size", "train_examples", "eval_examples"
    )
    engine = _common.make_engine()
    tables23.check_rows("table3", FLAGS.dataset, tuple(FLAGS.rows))
    _common.check_data(FLAGS.dataset)
    arrays = _common.load_arrays()
    tables23.check_resume("table3", arrays, FLAGS.output_dir, **_kwargs())
    return engine


def _kwargs():
    return dict(
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        only=tuple(FLAGS.rows),
        eval_examples=FLAGS.eval_examples,
        overwrite=FLAGS.overwrite,
    )


def main(argv):
    del argv
    engine = _common.validate(check_flags)
    _common.save_flags(FLAGS.output_dir, "table3")
    print(
        tables23.run_table(
            "table3",
            _common.data_spec(),
            FLAGS.output_dir,
            engine=engine,
            **_kwargs(),
        )
    )


if __name__ == "__main__":
    app.run(main)
