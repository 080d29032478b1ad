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

FLAGS = flags.FLAGS
_common.define_engine_flags()
_common.define_timing_flags(default_epochs=40, dataset="cifar10")
flags.DEFINE_integer("eval_examples", None, "Test examples for accuracy.")


def main(argv):
    del argv
    _common.validate(_common.check_positive, "eval_examples")
    _common.run_timing_table("table3", eval_examples=FLAGS.eval_examples)


if __name__ == "__main__":
    app.run(main)
