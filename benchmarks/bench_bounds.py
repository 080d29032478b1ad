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

The headline ratio is ``(forward+penalty - forward) / forward``.

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


def repeated(body, reps, xla):
    """A compiled loop running ``body(x_i) -> scalar`` reps times."""

    @tf.function(jit_compile=xla)
    def run(x):
        acc = tf.constant(0.0)
        for i in tf.range(reps):
            # Each iteration's input depends on the previous result, so the
            # loop cannot be collapsed; the perturbation is ~1e-30.
            xi = x + 1e-30 * acc + 1e-30 * tf.cast(i, tf.float32)
            acc = acc + body(xi)
        return acc

    return run


def time_round_robin(fns, x, trials):
    """Times every function once per round, ``trials`` rounds (interleaved,
    so machine-load changes hit all cases alike). Returns name -> list."""
    for fn in fns.values():  # trace + warm up
        fn(x).numpy()
        fn(x).numpy()
    times = {name: [] for name in fns}
    for _ in range(trials):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(x).numpy()
            times[name].append(time.perf_counter() - t0)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--xla", action="store_true", help="jit_compile=True")
    parser.add_argument("--grad", action="store_true", help="also backward")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    kernels, x, y = make_problem(batch=args.batch)
    eps = dict(eps_x=0.3, eps_w=0.02)

    def fwd(xi):
        return tf.reduce_sum(plain_forward(kernels, xi))

    def fwd_pen(variant):
        def body(xi):
            logits, tau, zeta = bounds.forward_with_margin_penalty(
                kernels, xi, y, variant=variant, **eps
            )
            return tf.reduce_sum(logits) + tf.reduce_sum(tau + zeta)

        return body

    def pen_given_z1(variant):
        def body(xi):
            z1 = tf.matmul(xi, kernels[0])
            logits = plain_forward(kernels, xi)  # the train step's forward
            tau, zeta = bounds.margin_penalty(
                kernels, xi, y, variant=variant, first_preactivation=z1, **eps
            )
            return tf.reduce_sum(logits) + tf.reduce_sum(tau + zeta)

        return body

    def pen_alone(variant):
        def body(xi):
            tau, zeta = bounds.margin_penalty(
                kernels, xi, y, variant=variant, **eps
            )
            return tf.reduce_sum(tau + zeta)

        return body

    def with_grad(body):
        def wrapped(xi):
            with tf.GradientTape() as tape:
                value = body(xi)
            grads = tape.gradient(value, kernels)
            return value + 1e-30 * tf.add_n([tf.reduce_sum(g) for g in grads])

        return wrapped

    def ce_fwd(xi):
        logits = plain_forward(kernels, xi)
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        )

    def ce_pen(variant):
        def body(xi):
            logits, tau, zeta = bounds.forward_with_margin_penalty(
                kernels, xi, y, variant=variant, **eps
            )
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
            return tf.reduce_mean(ce + 0.02 * tau + 0.02 * zeta)

        return body

    cases = [("forward", fwd)]
    for v in ("sound", "interval", "paper"):
        cases.append((f"forward+penalty[{v}]", fwd_pen(v)))
    for v in ("sound", "interval"):
        cases.append((f"forward & penalty[{v}] (z1 given)", pen_given_z1(v)))
        cases.append((f"penalty[{v}] standalone", pen_alone(v)))
    if args.grad:
        cases.append(("train: CE fwd+bwd", with_grad(ce_fwd)))
        for v in ("sound", "interval"):
            cases.append(
                (f"train: CE+penalty[{v}] fwd+bwd", with_grad(ce_pen(v)))
            )

    print(
        f"784-128-64-32-10, batch {args.batch}, reps {args.reps}, trials "
        f"{args.trials}, xla={args.xla}, grad={args.grad}, "
        f"threads={args.threads or 'default'}"
    )
    fns = {name: repeated(body, args.reps, args.xla) for name, body in cases}
    times = time_round_robin(fns, x, args.trials)
    results, bests = {}, {}
    for name in fns:
        results[name] = statistics.median(times[name]) / args.reps
        bests[name] = min(times[name]) / args.reps
        print(
            f"{name:42s} {1e6 * results[name]:9.1f} us/iter median "
            f"(min {1e6 * bests[name]:8.1f})"
        )
    print("\nratios, median-based (min-based); extra cost / forward:")

    def ratio(table, name, whole=False):
        base = table["forward"]
        value = table[name]
        return value / base if whole else (value - base) / base

    for name in results:
        if name.startswith("forward+penalty") or "(z1 given)" in name:
            print(
                f"  {name:42s} {ratio(results, name):6.3f} "
                f"({ratio(bests, name):6.3f})"
            )
        elif "standalone" in name:
            print(
                f"  {name:42s} {ratio(results, name, True):6.3f} "
                f"({ratio(bests, name, True):6.3f})  whole penalty / forward"
            )
    if args.grad:
        for v in ("sound", "interval"):
            key = f"train: CE+penalty[{v}] fwd+bwd"
            ce = "train: CE fwd+bwd"
            med = (results[key] - results[ce]) / results[ce]
            best = (bests[key] - bests[ce]) / bests[ce]
            print(
                f"  train step {v:8s}: extra / CE step        "
                f"{med:6.3f} ({best:6.3f})"
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
