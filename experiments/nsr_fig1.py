r"""Fig. 1 of Tsai et al. (2021): six MNIST models under the joint attack.

Trains Standard, Weight Perturb, AT, AT+β-1, AT+β-2 and JIWP (the bias-free
784-128-64-32-10 ReLU MLP), evaluates each with joint input-weight PGD on an
(eps_x, eps_w) grid, and writes contour PNGs and an AUC table (AUC relative
to AT; the paper reports about +24% for its best AT+β).

Usage:
  python -m experiments.nsr_fig1 --epochs=300 --output_dir=runs/nsr_fig1
"""

from absl import app
from absl import flags

from experiments import _common
from nsr_tf.sweep import nsr

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "runs/nsr_fig1", "Where every file goes.")
flags.DEFINE_integer("epochs", 300, "Training epochs of every model.")
flags.DEFINE_integer("batch_size", 50, "Batch size (paper: 50).")
flags.DEFINE_integer("train_examples", None, "Use the first N examples.")
flags.DEFINE_integer("test_examples", 1000, "Test examples attacked.")
flags.DEFINE_integer("attack_steps", 100, "Joint PGD steps (paper: 100).")
flags.DEFINE_list("eps_x", [str(v) for v in nsr.DEFAULT_EPS_X], "eps_x grid.")
flags.DEFINE_list("eps_w", [str(v) for v in nsr.DEFAULT_EPS_W], "eps_w grid.")
flags.DEFINE_list("models", list(nsr.CONFIGS), "Which of the six models.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_bool(
    "overwrite", False, "Redo models whose records have other settings."
)


def check_flags():
    """Every flag and the resume state; returns the budget."""
    _common.check_positive(
        "epochs", "batch_size", "train_examples", "test_examples"
    )
    if FLAGS.attack_steps < 0:
        raise ValueError(
            "`--attack_steps` must be >= 0. "
            f"Received: --attack_steps={FLAGS.attack_steps}"
        )
    budget = nsr.NSRBudget(
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        train_examples=FLAGS.train_examples,
        test_examples=FLAGS.test_examples,
        attack_steps=FLAGS.attack_steps,
        eps_x_grid=_common.parse_floats("eps_x"),
        eps_w_grid=_common.parse_floats("eps_w"),
    )
    nsr.check_resume(FLAGS.output_dir, budget, **_kwargs())
    return budget


def _kwargs():
    return dict(
        models=tuple(FLAGS.models), seed=FLAGS.seed, overwrite=FLAGS.overwrite
    )


def main(argv):
    del argv
    budget = _common.validate(check_flags)
    _common.save_flags(FLAGS.output_dir, "nsr_fig1")
    print(nsr.run_fig1(FLAGS.output_dir, budget, **_kwargs()))


if __name__ == "__main__":
    app.run(main)
