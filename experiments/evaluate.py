r"""Attack an exported SavedModel and report its robust accuracy.

Usage:
  python -m experiments.evaluate --saved_model=DIR --dataset=mnist \
      --attack=pgd --eps=0.46 --norm=2 [--loss=margin]
  python -m experiments.evaluate --saved_model=DIR --dataset=mnist \
      --attack=joint --eps_x=0,0.05,0.1 --eps_w=0,0.001,0.002
"""

import itertools
import json
import math

from absl import app
from absl import flags

from nsr_tf import attacks
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
flags.DEFINE_float("eps", None, "Input budget (> 0; required: fgm, pgd).")
flags.DEFINE_enum("norm", "2", ["2", "inf"], "Norm (fgm, pgd).")
flags.DEFINE_integer("steps", 15, "Attack steps (pgd, wrm, joint).")
flags.DEFINE_float("step_size", None, "PGD step (default 2 eps / steps).")
flags.DEFINE_float("gamma", 1.0, "WRM gamma.")
flags.DEFINE_enum("labels", "predicted", ["predicted", "true"], "Attacked.")
flags.DEFINE_enum("loss", "cross_entropy", list(attacks.LOSSES), "Attack loss.")
flags.DEFINE_list("eps_x", ["0", "0.05", "0.1"], "Joint eps_x grid.")
flags.DEFINE_list("eps_w", ["0", "0.001", "0.002"], "Joint eps_w grid.")
flags.DEFINE_float("step_size_x", 0.01, "Joint input step.")
flags.DEFINE_float("step_size_w", 0.0005, "Joint weight step.")
flags.DEFINE_string("output_json", None, "Also write the result here.")
flags.DEFINE_string("surface_png", None, "Contour PNG for --attack=joint.")
flags.mark_flags_as_required(["saved_model", "dataset"])

# Attacks whose budget must be a positive --eps (0 would report clean
# accuracy under the attack's name).
_EPS_ATTACKS = ("fgm", "pgd")


def _grid(name: str, values: list) -> list:
    try:
        grid = [float(v) for v in values]
    except ValueError:
        raise flags.ValidationError(
            f"--{name} must be numbers. Received: --{name}={','.join(values)}"
        ) from None
    rising = all(b > a for a, b in itertools.pairwise(grid))
    if len(grid) < 2 or grid[0] < 0 or not rising or math.isinf(grid[-1]):
        raise flags.ValidationError(
            f"--{name} must be >= 2 finite increasing values >= 0. "
            f"Received: --{name}={','.join(values)}"
        )
    return grid


@flags.multi_flags_validator(
    ["attack", "eps", "gamma", "steps", "step_size", "examples", "eps_x",
     "eps_w", "step_size_x", "step_size_w"],
)  # fmt: skip
def _check_attack_flags(f: dict) -> bool:
    """Every flag of the attack, checked before anything is loaded."""
    attack, eps = f["attack"], f["eps"]
    if attack in _EPS_ATTACKS and not (eps and 0 < eps and math.isfinite(eps)):
        raise flags.ValidationError(
            f"--eps must be a finite number > 0 for --attack={attack}. "
            f"Received: --eps={eps}"
        )
    gamma = f["gamma"]
    if attack == "wrm" and not (0 < gamma and math.isfinite(gamma)):
        raise flags.ValidationError(
            f"--gamma must be > 0 for --attack=wrm. Received: --gamma={gamma}"
        )
    if f["steps"] < 1:
        raise flags.ValidationError(
            f"--steps must be >= 1. Received: --steps={f['steps']}"
        )
    if f["examples"] is not None and f["examples"] < 1:
        raise flags.ValidationError(
            f"--examples must be >= 1. Received: --examples={f['examples']}"
        )
    for name in ("step_size", "step_size_x", "step_size_w"):
        if f[name] is not None and not 0 <= f[name] < math.inf:
            raise flags.ValidationError(
                f"--{name} must be >= 0. Received: --{name}={f[name]}"
            )
    ex, ew = _grid("eps_x", f["eps_x"]), _grid("eps_w", f["eps_w"])
    if attack == "joint" and ex[-1] == 0 and ew[-1] == 0:
        raise flags.ValidationError(
            "--eps_x or --eps_w must hold a value > 0 for --attack=joint."
        )
    return True


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
        eps=FLAGS.eps or 0.0,
        norm=float(FLAGS.norm),
        steps=FLAGS.steps,
        step_size=FLAGS.step_size,
        gamma=FLAGS.gamma,
        labels=FLAGS.labels,
        loss=FLAGS.loss,
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
