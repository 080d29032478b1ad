"""Cost of eq. 23's margin penalty relative to one forward pass.

Network: the NSR paper's bias-free 784-128-64-32-10 ReLU MLP (Glorot
uniform), batch 50, MNIST-like inputs (about 27% non-zero pixels in [0, 1]).

Each measured function runs ``--reps`` times inside ONE compiled
``tf.function`` (a ``tf.range`` loop whose iterations depend on each other, so
nothing is hoisted), and the wall time of that call is repeated ``--trials``
times; medians are reported, per iteration. Measured, side by side:

* ``forward``: logits only (4 matmuls + 3 ReLUs);
* ``forward+penalty[v]``: ``forward_with_margin_penalty`` (logits, tau, zeta;
  the clean first-layer pre-activation is shared), for each variant;
* ``penalty[v] (z1 given)``: ``margin_penalty(..., first_preactivation=z1)``;
* ``penalty[v] (standalone)``: ``margin_penalty`` recomputing ``x @ K1``;
* with ``--grad``: the same with a gradient w.r.t. the kernels (a train step's
  cost: CE vs CE + alpha tau + beta zeta).

The headline ratio is ``(forward+penalty - forward) / forward``. By default
the kernels are loop-invariant, and XLA hoists all weight-only work out of
the loop, so the ratio is the PER-EXAMPLE cost. With ``--fresh`` every
iteration gets updated kernels (as in training), the weight-only work (one
pass over every kernel for the row norms) is paid each time, and the extra
cost is divided by a plain forward pass with fixed kernels. Two floors are
timed: a forward plus one pass over W1 (N_1, which tau needs) and a forward
plus the two h* matmuls alone.

Run:
    python benchmarks/bench_bounds.py [--reps 200] [--trials 15] [--xla]
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Run from a checkout without installing it (as the other benchmarks do).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from nsr_tf import bounds  # noqa: E402

WIDTHS = (784, 128, 64, 32, 10)
BASE = "forward [fixed kernels, no update]"
BATCH = 50


def make_problem(seed=0, batch=BATCH):
    gen = np.random.default_rng(seed)
    kernels = []
    for n_in, n_out in zip(WIDTHS[:-1], WIDTHS[1:], strict=True):
        limit = np.sqrt(6.0 / (n_in + n_out))
        kernels.append(
            tf.Variable(
                gen.uniform(-limit, limit, (n_in, n_out)), dtype="float32"
            )
        )
    x = gen.uniform(0, 1, (batch, WIDTHS[0])) * (
        gen.uniform(size=(batch, 784)) < 0.27
    )
    y = gen.integers(0, 10, batch)
    return kernels, tf.constant(x, tf.float32), tf.constant(y, tf.int32)


def plain_forward(kernels, x):
    h = x
    for k in kernels[:-1]:
        h = tf.nn.relu(tf.matmul(h, k))
    return tf.matmul(h, kernels[-1])


def repeated(body, reps, xla, kernels=None):
    """A compiled loop running ``body(x_i, kernels_i) -> scalar`` reps times.

    With ``kernels`` given, every iteration uses fresh kernels
    ``k + 1e-30 * acc`` (as a train step does after an optimizer update), so
    XLA cannot hoist the weight-only work (row norms, ``max(W + eps, 0)``,
    the K x K distances) out of the loop; the forward pays the same update.
    Without it, the kernels are loop-invariant and XLA's loop-invariant code
    motion moves all weight-only work out of the loop: what is timed is then
    the per-example cost only.
    """

    @tf.function(jit_compile=xla)
    def run(x):
        acc = tf.constant(0.0)
        for i in tf.range(reps):
            # Each iteration's input depends on the previous result, so the
            # loop cannot be collapsed; the perturbation is ~1e-30.
            xi = x + 1e-30 * acc + 1e-30 * tf.cast(i, tf.float32)
            ks = None if kernels is None else [k + 1e-30 * acc for k in kernels]
            acc = acc + body(xi, ks)
        return acc

    return run


def time_round_robin(fns, x, trials):
    """Times every function once per round, ``trials`` rounds (interleaved,
    so machine-load changes hit all cases alike). Returns two dicts name ->
    list: wall seconds and process CPU seconds (all threads)."""
    for fn in fns.values():  # trace + warm up
        fn(x).numpy()
        fn(x).numpy()
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(trials):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn(x).numpy()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - t0)
    return wall, cpu


def inf_norm_w1(kernels):
    """One pass over the first kernel (N_1 of eq. 21): the per-step floor."""
    return tf.reduce_max(tf.reduce_sum(tf.abs(kernels[0]), axis=0))


def forward_and_h_star(kernels, xi, eps_w):
    """Logits plus the sound h* recursion's two matmuls alone (no norms),
    sharing ``x K1`` as the penalty does: the FLOP floor of the per-example
    work (0.092 F)."""
    z1 = tf.matmul(xi, kernels[0])
    h, u = tf.nn.relu(z1), tf.nn.relu(z1)
    for k in kernels[1:-1]:
        h = tf.nn.relu(tf.matmul(h, k))
        u = tf.nn.relu(tf.matmul(u, tf.nn.relu(k + eps_w)))
    return tf.reduce_sum(tf.matmul(h, kernels[-1])) + tf.reduce_sum(u)


def build_cases(kernels, y, eps, grad):
    """name -> body(xi, ks); ``ks`` (fresh kernels) or None (fixed)."""

    def fwd(xi, ks):
        return tf.reduce_sum(plain_forward(ks or kernels, xi))

    def fwd_pen(variant):
        def body(xi, ks):
            logits, tau, zeta = bounds.forward_with_margin_penalty(
                ks or kernels, xi, y, variant=variant, **eps
            )
            return tf.reduce_sum(logits) + tf.reduce_sum(tau + zeta)

        return body

    def pen_given_z1(variant):
        def body(xi, ks):
            ks = ks or kernels
            z1 = tf.matmul(xi, ks[0])
            logits = plain_forward(ks, xi)  # the train step's forward
            tau, zeta = bounds.margin_penalty(
                ks, xi, y, variant=variant, first_preactivation=z1, **eps
            )
            return tf.reduce_sum(logits) + tf.reduce_sum(tau + zeta)

        return body

    def pen_alone(variant):
        def body(xi, ks):
            tau, zeta = bounds.margin_penalty(
                ks or kernels, xi, y, variant=variant, **eps
            )
            return tf.reduce_sum(tau + zeta)

        return body

    def floor_w1(xi, ks):
        return fwd(xi, ks) + inf_norm_w1(ks or kernels)

    def floor_h_star(xi, ks):
        return forward_and_h_star(ks or kernels, xi, eps["eps_w"])

    def with_grad(body):
        def wrapped(xi, ks):
            with tf.GradientTape() as tape:
                if ks is not None:
                    tape.watch(ks)
                value = body(xi, ks)
            grads = tape.gradient(value, ks or kernels)
            return value + 1e-30 * tf.add_n([tf.reduce_sum(g) for g in grads])

        return wrapped

    def ce_fwd(xi, ks):
        logits = plain_forward(ks or kernels, xi)
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        )

    def ce_pen(variant):
        def body(xi, ks):
            logits, tau, zeta = bounds.forward_with_margin_penalty(
                ks or kernels, xi, y, variant=variant, **eps
            )
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
            return tf.reduce_mean(ce + 0.02 * tau + 0.02 * zeta)

        return body

    cases = [("forward", fwd)]
    for v in ("sound", "interval", "interval_exact", "paper"):
        cases.append((f"forward+penalty[{v}]", fwd_pen(v)))
    for v in ("sound", "interval"):
        cases.append((f"forward & penalty[{v}] (z1 given)", pen_given_z1(v)))
        cases.append((f"penalty[{v}] standalone", pen_alone(v)))
    cases.append(("floor: forward + N_1 pass over W1", floor_w1))
    cases.append(("floor: forward + h* matmuls only", floor_h_star))
    if grad:
        cases.append(("train: CE fwd+bwd", with_grad(ce_fwd)))
        for v in ("sound", "interval"):
            cases.append(
                (f"train: CE+penalty[{v}] fwd+bwd", with_grad(ce_pen(v)))
            )
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--xla", action="store_true", help="jit_compile=True")
    parser.add_argument("--grad", action="store_true", help="also backward")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="new kernels every iteration (a train step's per-step cost; "
        "without it XLA hoists all weight-only work out of the loop)",
    )
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    kernels, x, y = make_problem(batch=args.batch)
    eps = dict(eps_x=0.3, eps_w=0.02)
    cases = build_cases(kernels, y, eps, args.grad)
    print(
        f"784-128-64-32-10, batch {args.batch}, reps {args.reps}, trials "
        f"{args.trials}, xla={args.xla}, fresh={args.fresh}, "
        f"grad={args.grad}, threads={args.threads or 'default'}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    fresh = kernels if args.fresh else None
    fns = {
        name: repeated(body, args.reps, args.xla, fresh) for name, body in cases
    }
    if args.fresh:
        # The denominator: a plain forward pass (fixed kernels, no update).
        fns[BASE] = repeated(cases[0][1], args.reps, args.xla, None)
    wall, cpu = time_round_robin(fns, x, args.trials)
    results = {n: statistics.median(wall[n]) / args.reps for n in fns}
    bests = {n: min(wall[n]) / args.reps for n in fns}
    cpus = {n: statistics.median(cpu[n]) / args.reps for n in fns}
    for name in fns:
        print(
            f"{name:42s} {1e6 * results[name]:8.1f} us/iter median (min "
            f"{1e6 * bests[name]:7.1f}; CPU {1e6 * cpus[name]:7.1f})"
        )
    print("\nratios, wall median (wall min; CPU median); extra cost / forward:")

    def ratio(table, name, whole=False):
        base = table.get(BASE, table["forward"])
        value = table[name]
        return value / base if whole else (value - table["forward"]) / base

    for name in results:
        if name in ("forward", BASE) or name.startswith("train"):
            continue
        whole = "standalone" in name
        print(
            f"  {name:42s} {ratio(results, name, whole):6.3f} "
            f"({ratio(bests, name, whole):6.3f}; "
            f"{ratio(cpus, name, whole):6.3f})"
            + ("  whole penalty / forward" if whole else "")
        )
    if args.grad:
        ce = "train: CE fwd+bwd"
        for v in ("sound", "interval"):
            key = f"train: CE+penalty[{v}] fwd+bwd"
            print(
                f"  train step {v:8s}: extra / CE step        "
                f"{(results[key] - results[ce]) / results[ce]:6.3f}"
                f" ({(bests[key] - bests[ce]) / bests[ce]:6.3f}; "
                f"{(cpus[key] - cpus[ce]) / cpus[ce]:6.3f})"
            )
    flops = 2 * sum(a * b for a, b in zip(WIDTHS[:-1], WIDTHS[1:], strict=True))
    zeta_flops = 2 * sum(
        a * b for a, b in zip(WIDTHS[1:-2], WIDTHS[2:-1], strict=True)
    )
    print(
        f"\nFLOPs/sample: forward {flops}, sound h* {zeta_flops} "
        f"({zeta_flops / flops:.3f} F)"
    )


if __name__ == "__main__":
    main()
