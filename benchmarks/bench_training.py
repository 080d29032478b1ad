"""Cost of a RobustModel training step against its floor.

Side by side in one run (compiled steps, interleaved timing rounds, so that
load from other processes affects every variant alike):

* ``pgm`` (PGM-15, l2, SN paper §4) ``RobustModel.train_step`` against the
  floor of 17 forward+backward passes of the same model: 16 input-gradient
  passes plus one weight-gradient pass with the optimizer update (the work
  an adversarial step cannot avoid: 15 attack steps, the clean pass for the
  predicted labels, the training pass). Target: <= 1.10x.
* ``at_beta`` (PGD-10 l_inf + beta max zeta, NSR eq. 23) against ``at``
  (the same PGD-10 training without the penalty) on the NSR paper's
  784-128-64-32-10 network. Target: <= 1.15x.

Each figure is the per-step time of the fastest round (least disturbed by
other load); the median round is reported too.

Usage:
    python benchmarks/bench_training.py --out /work/notes/bench_training.md
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nsr_tf import models  # noqa: E402
from nsr_tf.training import RobustConfig  # noqa: E402
from nsr_tf.training import robustify  # noqa: E402


def _data(batch, shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, *shape)).astype("float32")
    y = rng.integers(0, 10, batch).astype("int64")
    return tf.constant(x), tf.constant(y)


def _robust(arch, config, shape, beta):
    keras.utils.set_random_seed(0)
    net = models.build(arch, input_shape=shape, beta=beta)
    model = robustify(net, config)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.build(model.trainable_variables)
    return model


JIT = False


def robust_step(model):
    """The model's own train_step, compiled as ``fit`` compiles it."""
    step = tf.function(model.train_step, jit_compile=JIT)
    return lambda x, y: step((x, y))


def floor_step(model, passes):
    """``passes - 1`` input-gradient passes + 1 weight step, one function."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits
    variables = model.trainable_variables

    @tf.function(jit_compile=JIT)
    def step(x, y):
        def body(i, xi):
            with tf.GradientTape() as tape:
                tape.watch(xi)
                loss = tf.reduce_sum(ce(y, model(xi, training=False)))
            g = tape.gradient(loss, xi)
            return i + 1, xi + 1e-3 * g

        _, x_last = tf.while_loop(
            lambda i, _: i < passes - 1, body, (tf.constant(0), x)
        )
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(ce(y, model(x_last, training=True)))
        grads = tape.gradient(loss, variables)
        model.optimizer.apply(grads, variables)
        return loss

    return step


def time_side_by_side(fns, x, y, *, rounds, calls):
    """Interleaved rounds.

    Returns:
        {name: (fastest wall, median wall, median process CPU)} in seconds
        per call. Process CPU time (all threads of this process) is less
        contaminated by other processes' load than wall time.
    """
    for fn in fns.values():  # trace and warm up
        for _ in range(2):
            _sync(fn(x, y))
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                out = fn(x, y)
            _sync(out)
            wall[name].append((time.perf_counter() - start) / calls)
            cpu[name].append((time.process_time() - start_cpu) / calls)
    return {
        k: (min(wall[k]), float(np.median(wall[k])), float(np.median(cpu[k])))
        for k in fns
    }


def _sync(out):
    for t in tf.nest.flatten(out):
        if hasattr(t, "numpy"):
            t.numpy()


def bench_pgm(arch, shape, batch, rounds, calls, norm):
    eps = 2.0 if norm == "2" else 0.1
    config = RobustConfig(mode="pgm", eps=eps, norm=norm, steps=15)
    model = _robust(arch, config, shape, beta=1.0)
    x, y = _data(batch, shape)
    res = time_side_by_side(
        {
            "pgm15_step": robust_step(model),
            "floor_17_fwd_bwd": floor_step(model, 17),
        },
        x,
        y,
        rounds=rounds,
        calls=calls,
    )
    return res, ("pgm15_step", "floor_17_fwd_bwd", 1.10)


def bench_at_beta(batch, rounds, calls, variant):
    shape = (28, 28, 1)
    at = RobustConfig(mode="at", eps=0.08, steps=10)
    at_beta = RobustConfig(
        mode="at_beta", eps=0.08, steps=10, zeta_weight=3e-4, eps_w=0.01,
        variant=variant,
    )  # fmt: skip
    x, y = _data(batch, shape)
    res = time_side_by_side(
        {
            "at_step": robust_step(_robust("nsr_mlp", at, shape, float("inf"))),
            "at_beta_step": robust_step(
                _robust("nsr_mlp", at_beta, shape, float("inf"))
            ),
        },
        x,
        y,
        rounds=rounds,
        calls=calls,
    )
    return res, ("at_beta_step", "at_step", 1.15)


def _table(title, res, spec):
    num, den, target = spec
    ratios = [res[num][i] / res[den][i] for i in range(3)]
    lines = [
        f"### {title}",
        "",
        "| step | wall, fastest round (ms) | wall, median round (ms) "
        "| process CPU, median round (ms) |",
        "|---|---|---|---|",
    ]
    for name, (lo, mid, cpu) in res.items():
        lines.append(
            f"| {name} | {1e3 * lo:.2f} | {1e3 * mid:.2f} | {1e3 * cpu:.2f} |"
        )
    lines.append(
        f"| **ratio {num} / {den}** (target <= {target:.2f}) | "
        + " | ".join(f"**{r:.3f}**" for r in ratios)
        + " |"
    )
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--pgm_archs", default="mlp2,elunet")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--nsr_batch", type=int, default=50)
    parser.add_argument("--variant", default="sound")
    parser.add_argument("--norms", default="2,inf", help="PGM norms")
    parser.add_argument(
        "--jit_compile",
        action="store_true",
        help="compile every step with XLA (as fit(jit_compile=True))",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    global JIT
    JIT = bool(args.jit_compile)

    sections = [
        "# Training-step cost against its floor (benchmarks/bench_training.py)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs visible, TF {tf.__version__}, "
        f"Keras {keras.__version__}. Command: `python "
        f"benchmarks/bench_training.py {' '.join(argv or sys.argv[1:])}`",
        "",
    ]
    norms = [n for n in args.norms.split(",") if n]
    for arch in [a for a in args.pgm_archs.split(",") if a]:
        shape = (28, 28, 1)
        for norm in norms:
            res, spec = bench_pgm(
                arch, shape, args.batch, args.rounds, args.calls, norm
            )
            sections.append(
                _table(
                    f"PGM-15 (l{norm}) on {arch}, SN beta=1, "
                    f"batch {args.batch}",
                    res,
                    spec,
                )
            )
            print(sections[-1], flush=True)
    res, spec = bench_at_beta(
        args.nsr_batch, args.rounds, args.calls, args.variant
    )
    sections.append(
        _table(
            "at_beta vs at on nsr_mlp (784-128-64-32-10), PGD-10 l_inf, "
            f"variant {args.variant!r}, batch {args.nsr_batch}",
            res,
            spec,
        )
    )
    print(sections[-1], flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(sections))


if __name__ == "__main__":
    main()
