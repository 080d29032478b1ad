r"""Fig. 1 of Tsai et al. (2021): MNIST models under the joint attack.

Trains Standard, Weight Perturb (and the same at the printed penalty
scale), AT, AT at ε = 0.03, AT+β-1, AT+β-2 and JIWP (the bias-free
784-128-64-32-10 ReLU MLP), evaluates each with joint input-weight PGD on an
(eps_x, eps_w) grid, and writes under ``--output_dir`` a record per model
(finished models are skipped on rerun), ``nsr_fig1.json``, the AUC table
``nsr_fig1_auc.md`` (measured AUC ordering beside the paper's) and contour
PNGs. A ``CollapseMonitor`` warns when a model's training collapses.

Usage:
  python -m experiments.nsr_fig1 --epochs=300 --at_epochs=30 \
      --output_dir=results/nsr_fig1
  # choose each penalty model's scale by the paper's rule:
  python -m experiments.nsr_fig1 --select_scale=1,0.1,0.05,0.02,0.01 ...
"""

from absl import app
from absl import flags

from experiments import _common
from nsr_tf.sweep import nsr

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "runs/nsr_fig1", "Where every file goes.")
flags.DEFINE_integer("epochs", 300, "Epochs of Standard, WP, JIWP (paper).")
flags.DEFINE_integer("at_epochs", None, "Epochs of the AT family (--epochs).")
flags.DEFINE_integer("batch_size", 50, "Batch size (paper: 50).")
flags.DEFINE_float("learning_rate", 1e-4, "Adam learning rate (paper).")
flags.DEFINE_integer("train_examples", None, "Use the first N examples.")
flags.DEFINE_integer("test_examples", None, "Test examples (default all).")
flags.DEFINE_integer("attack_steps", 100, "Joint PGD steps (paper: 100).")
flags.DEFINE_list("eps_x", [str(v) for v in nsr.DEFAULT_EPS_X], "eps_x grid.")
flags.DEFINE_list("eps_w", [str(v) for v in nsr.DEFAULT_EPS_W], "eps_w grid.")
flags.DEFINE_list("models", list(nsr.CONFIGS), "Which models.")
flags.DEFINE_bool(
    "warm_start",
    True,
    "Start every model from one Standard model trained --epochs epochs "
    "(else all from scratch).",
)
flags.DEFINE_list(
    "select_scale",
    [],
    "Penalty-scale grid: pick the largest whose clean validation accuracy "
    "is within 5 points of Standard's (empty: RobustConfig's default).",
)
flags.DEFINE_integer("select_epochs", None, "Epochs per selection trial.")
flags.DEFINE_integer("val_examples", 5000, "Held-out validation images.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_bool(
    "overwrite", False, "Redo models whose records have other settings."
)
_common.define_engine_flags()


def check_flags():
    """Every flag and the resume state; returns the budget and engine."""
    _common.check_positive(
        "epochs",
        "at_epochs",
        "batch_size",
        "train_examples",
        "test_examples",
        "select_epochs",
        "val_examples",
    )
    if FLAGS.attack_steps < 0:
        raise ValueError(
            "`--attack_steps` must be >= 0. "
            f"Received: --attack_steps={FLAGS.attack_steps}"
        )
    if not FLAGS.learning_rate > 0:
        raise ValueError(
            "`--learning_rate` must be > 0. "
            f"Received: --learning_rate={FLAGS.learning_rate}"
        )
    scale_grid = _common.parse_floats("select_scale")
    if any(not v > 0 for v in scale_grid):
        raise ValueError(
            "`--select_scale` must list numbers > 0. "
            f"Received: --select_scale={','.join(FLAGS.select_scale)}"
        )
    budget = nsr.NSRBudget(
        epochs=FLAGS.epochs,
        at_epochs=FLAGS.at_epochs,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        train_examples=FLAGS.train_examples,
        test_examples=FLAGS.test_examples,
        attack_steps=FLAGS.attack_steps,
        eps_x_grid=_common.parse_floats("eps_x"),
        eps_w_grid=_common.parse_floats("eps_w"),
        warm_start=FLAGS.warm_start,
        scale_grid=scale_grid,
        select_epochs=FLAGS.select_epochs,
        val_examples=FLAGS.val_examples,
    )
    nsr.check_resume(FLAGS.output_dir, budget, **_kwargs())
    return budget, _common.make_engine()


def _kwargs():
    return dict(
        models=tuple(FLAGS.models), seed=FLAGS.seed, overwrite=FLAGS.overwrite
    )


def main(argv):
    del argv
    budget, engine = _common.validate(check_flags)
    _common.save_flags(FLAGS.output_dir, "nsr_fig1")
    print(nsr.run_fig1(FLAGS.output_dir, budget, engine=engine, **_kwargs()))


if __name__ == "__main__":
    app.run(main)
