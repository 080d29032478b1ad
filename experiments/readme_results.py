r"""Regenerates the README's Results blocks from the records in git.

Usage:
  python -m experiments.readme_results [--readme=README.md] \
      [--results_dir=results]
"""

import os

from absl import app
from absl import flags

from experiments import _common
from nsr_tf.sweep import readme

FLAGS = flags.FLAGS
flags.DEFINE_string("readme", "README.md", "The README to rewrite.")
flags.DEFINE_string("results_dir", "results", "Committed result records.")


def check_flags():
    if not os.path.isfile(FLAGS.readme):
        raise ValueError(
            f"`--readme` must name a file. Received: --readme={FLAGS.readme}"
        )
    _common.check_dirs("results_dir", [FLAGS.results_dir])


def main(argv):
    del argv
    _common.validate(check_flags)
    names = readme.update(FLAGS.readme, FLAGS.results_dir)
    print("rewrote:", ", ".join(names) or "nothing")


if __name__ == "__main__":
    app.run(main)
