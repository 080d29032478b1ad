r"""The SN paper's Figures 2a, 2b, 3, 4, 5 and 6 from saved Table 1 runs.

Usage (after `experiments.table1`, and a random-label sweep for 3-4):
  python -m experiments.figures --runs_dir=runs/table1 \
      --random_runs_dir=runs/table1_random --dataset=mnist --arch=mlp1 \
      --output_dir=runs/figures
"""

from absl import app
from absl import flags
from absl import logging

from experiments import _common
from nsr_tf import data
from nsr_tf.sweep import figures

FLAGS = flags.FLAGS
flags.DEFINE_string("runs_dir", None, "Output dir of a Table 1 sweep.")
flags.DEFINE_string("random_runs_dir", None, "Random-label sweep (Fig. 3-4).")
flags.DEFINE_enum("dataset", "cifar10", ["mnist", "cifar10", "svhn"], "Data.")
flags.DEFINE_string("arch", "alexnet", "Architecture (paper: alexnet).")
flags.DEFINE_string("beta", "1.3", "Beta of Fig. 2b (paper: 1.3).")
flags.DEFINE_list("fig3_betas", ["inf", "1.3"], "Betas compared in Fig. 3.")
flags.DEFINE_string("fig5_attack", "pgm_l2", "Attack of Fig. 5.")
flags.DEFINE_list("fig5_eps", ["0", "1", "2", "3", "4", "5"], "Fig. 5 grid.")
flags.DEFINE_list(
    "certified_eps", ["0", "0.1", "0.25", "0.5", "1", "2"], "Certified grid."
)
flags.DEFINE_integer("examples", 2000, "Examples per distribution / curve.")
flags.DEFINE_string("data_dir", None, "Official files or tfds data dir.")
flags.DEFINE_enum("source", "auto", ["auto", "files", "tfds"], "Data source.")
flags.DEFINE_string("output_dir", "runs/figures", "Where the PNGs go.")
flags.mark_flags_as_required(["runs_dir"])


def check_flags():
    """Every flag and the data source."""
    from nsr_tf.sweep import rows as rows_lib

    _common.check_dirs("runs_dir", [FLAGS.runs_dir])
    if FLAGS.random_runs_dir:
        _common.check_dirs("random_runs_dir", [FLAGS.random_runs_dir])
    _common.check_positive("examples")
    if FLAGS.arch not in rows_lib.ARCH_LABELS:
        raise ValueError(
            f"`--arch` must be one of {tuple(rows_lib.ARCH_LABELS)}. "
            f"Received: --arch={FLAGS.arch}"
        )
    _common.parse_betas("beta", [FLAGS.beta])
    _common.parse_betas("fig3_betas", FLAGS.fig3_betas)
    attacks = tuple(t for t in rows_lib.TRAINING_LABELS if t != "erm")
    if FLAGS.fig5_attack not in attacks:
        raise ValueError(
            f"`--fig5_attack` must be one of {attacks}. "
            f"Received: --fig5_attack={FLAGS.fig5_attack}"
        )
    _common.parse_floats("fig5_eps")
    _common.check_data(FLAGS.dataset)


def main(argv):
    del argv
    _common.validate(check_flags)
    _common.save_flags(FLAGS.output_dir, "figures")
    n, out = FLAGS.examples, FLAGS.output_dir
    load = lambda split, **kw: data.load(  # noqa: E731
        FLAGS.dataset, split, data_dir=FLAGS.data_dir, source=FLAGS.source, **kw
    )
    x_tr, y_tr = (a[:n] for a in load("train"))
    x_te, y_te = (a[:n] for a in load("test"))
    row = f"{FLAGS.dataset}/{FLAGS.arch}"
    trainings = ("erm", "fgm_l2", "pgm_l2", "wrm")
    made = [
        figures.fig2a(FLAGS.runs_dir, f"{row}/erm", x_te, f"{out}/fig2a.png"),
        figures.fig2b(
            FLAGS.runs_dir,
            [f"{row}/{t}" for t in trainings],
            FLAGS.beta,
            x_tr,
            y_tr,
            f"{out}/fig2b.png",
        ),
        figures.fig5(
            FLAGS.runs_dir,
            f"{row}/erm",
            FLAGS.fig5_attack,
            [float(e) for e in FLAGS.fig5_eps],
            x_te,
            y_te,
            f"{out}/fig5.png",
        ),
        figures.fig6(
            f"{FLAGS.runs_dir}/table1_{FLAGS.dataset}.json", f"{out}/fig6.png"
        ),
        figures.certified_vs_eps(
            FLAGS.runs_dir,
            f"{row}/erm",
            [float(e) for e in FLAGS.certified_eps],
            x_te,
            y_te,
            f"{out}/certified_l2.png",
        ),
    ]
    if FLAGS.random_runs_dir:
        _, y_rand = (a[:n] for a in load("train", random_labels=True, seed=100))
        made.append(
            figures.fig3(
                FLAGS.runs_dir,
                FLAGS.random_runs_dir,
                f"{row}/erm",
                tuple(FLAGS.fig3_betas),
                x_tr,
                y_tr,
                y_rand,
                f"{out}/fig3.png",
            )
        )
        made.append(
            figures.fig4(
                FLAGS.random_runs_dir,
                [f"{row}/{t}" for t in trainings],
                f"{out}/fig4.png",
            )
        )
    for path in made:
        logging.info("wrote %s", path)
        print(path)


if __name__ == "__main__":
    app.run(main)
