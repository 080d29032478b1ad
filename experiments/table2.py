r"""Table 2 of Farnia et al. (2019): training time with vs without SN.

Usage:
  python -m experiments.table2 --dataset=mnist --epochs=1 \
      --output_dir=runs/table2
"""

from absl import app
from absl import flags

from experiments import _common

FLAGS = flags.FLAGS
_common.define_engine_flags()
_common.define_timing_flags(default_epochs=40)


def main(argv):
    del argv
    _common.run_timing_table("table2")


if __name__ == "__main__":
    app.run(main)
