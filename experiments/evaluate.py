r"""Attack an exported SavedModel and report its robust accuracy.

Usage:
  python -m experiments.evaluate --saved_model=DIR --dataset=mnist \
      --attack=pgd --eps=0.46 --norm=2
  python -m experiments.evaluate --saved_model=DIR --dataset=mnist \
      --attack=joint --eps_x=0,0.05,0.1 --eps_w=0,0.001,0.002
"""

import json

from absl import app
from absl import flags

from nsr_tf import data
from nsr_tf.sweep import saved_eval

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "Exported SavedModel directory.")
flags.DEFINE_enum("dataset", None, ["mnist", "cifar10", "svhn"], "Dataset.")
flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Split.")
flags.DEFINE_integer("examples", None, "Attack the first N examples.")
flags.DEFINE_string("data_dir", None, "Official files or tfds data dir.")
flags.DEFINE_enum("source", "auto", ["auto", "files", "tfds"], "Data source.")
flags.DEFINE_enum("attack", "pgd", list(saved_eval.ATTACKS), "Attack.")
flags.DEFINE_float("eps", 0.0, "Input budget (fgm, pgd).")
flags.DEFINE_enum("norm", "2", ["2", "inf"], "Norm (fgm, pgd).")
flags.DEFINE_integer("steps", 15, "Attack steps (pgd, wrm, joint).")
flags.DEFINE_float("step_size", None, "PGD step (default 2 eps / steps).")
flags.DEFINE_float("gamma", 1.0, "WRM gamma.")
flags.DEFINE_enum("labels", "predicted", ["predicted", "true"], "Attacked.")
flags.DEFINE_list("eps_x", ["0", "0.05", "0.1"], "Joint eps_x grid.")
flags.DEFINE_list("eps_w", ["0", "0.001", "0.002"], "Joint eps_w grid.")
flags.DEFINE_float("step_size_x", 0.01, "Joint input step.")
flags.DEFINE_float("step_size_w", 0.0005, "Joint weight step.")
flags.DEFINE_string("output_json", None, "Also write the result here.")
flags.DEFINE_string("surface_png", None, "Contour PNG for --attack=joint.")
flags.mark_flags_as_required(["saved_model", "dataset"])


def main(argv):
    del argv
    x, y = data.load(
        FLAGS.dataset, FLAGS.split, data_dir=FLAGS.data_dir, source=FLAGS.source
    )
    x, y = x[: FLAGS.examples], y[: FLAGS.examples]
    result = saved_eval.evaluate_saved_model(
        FLAGS.saved_model,
        x,
        y,
        attack=FLAGS.attack,
        eps=FLAGS.eps,
        norm=float(FLAGS.norm),
        steps=FLAGS.steps,
        step_size=FLAGS.step_size,
        gamma=FLAGS.gamma,
        labels=FLAGS.labels,
        eps_x_grid=tuple(map(float, FLAGS.eps_x)),
        eps_w_grid=tuple(map(float, FLAGS.eps_w)),
        step_size_x=FLAGS.step_size_x,
        step_size_w=FLAGS.step_size_w,
        surface_png=FLAGS.surface_png,
    )
    text = json.dumps(result, indent=1)
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    app.run(main)
