"""Training-step time of SN layers against plain Keras Dense/Conv2D.

Side by side in one run, for the paper's MNIST ELU MLPs (784-512-10 and
784-512-512-10) and the CIFAR mini-AlexNet (28x28x3, spec §2), with ERM and
PGM-15 (l2) adversarial training, batch 128, compiled train steps
(``tf.function``). Variants: ``plain`` (keras.layers.Dense/Conv2D), ``sn``
(SNDense/SNConv2D, beta=1, one power iteration per step, gradients through
sigma_hat), ``sn_autodiff`` (as ``sn`` with autodiff through the power
step of the dense layers instead of ``layers.capped_matmul``) and ``sn_inf``
(beta=inf: sigma tracked only).

Plain and SN steps are timed in alternating rounds (alternating order too)
so that load from other processes affects both alike; the table reports the
fastest round (the least disturbed by other load) of wall time, of process
CPU time (all threads), and the median over rounds of the within-round wall
ratio ("paired": the two variants run back to back, so slow drift
cancels). ``--threads 1`` pins TF to one intra-/inter-op thread: the least
noisy comparison on a shared machine. Models are built and warmed up in the
order of ``--variants``; the order can move the SN/plain ratios by a few
percent, so run both orders (``plain,sn`` and ``sn,plain``).
``--frozen_attack`` runs the PGM loop under ``kernel_override`` with the SN
kernels computed once per step (what an attack could do; same values).

Usage:
    python benchmarks/bench_sn_layers.py --out /work/notes/bench_layers.md
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

from layers import SNConv2D  # noqa: E402
from layers import SNDense  # noqa: E402
from layers import effective_kernel  # noqa: E402
from layers import is_spectral  # noqa: E402
from layers._sn_common import SpectralNormMixin  # noqa: E402
from layers.override import kernel_override  # noqa: E402

BATCH = 128
PGM_STEPS = 15


class _AutodiffSNDense(SNDense):
    """SNDense with autodiff through its power step instead of the fused
    ``layers.capped_matmul`` (the same values and gradient)."""

    _capped_apply = SpectralNormMixin._capped_apply


def _dense(variant):
    def make(units, activation=None):
        if variant == "plain":
            return keras.layers.Dense(units, activation=activation)
        beta = float("inf") if variant == "sn_inf" else 1.0
        cls = _AutodiffSNDense if variant == "sn_autodiff" else SNDense
        return cls(units, activation=activation, beta=beta)

    return make


def _conv(variant):
    def make(filters, kernel_size, activation=None):
        if variant == "plain":
            return keras.layers.Conv2D(
                filters, kernel_size, padding="same", activation=activation
            )
        beta = float("inf") if variant == "sn_inf" else 1.0
        return SNConv2D(
            filters,
            kernel_size,
            padding="same",
            activation=activation,
            beta=beta,
        )

    return make


def _lrn(x):
    return tf.nn.local_response_normalization(
        x, depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75
    )


def build_model(arch, variant):
    dense = _dense(variant)
    if arch.startswith("mlp"):
        layers = [keras.Input((28, 28, 1)), keras.layers.Flatten()]
        layers += [dense(512, "elu")]
        if arch == "mlp2":
            layers += [dense(512, "elu")]
        layers += [dense(10)]
        return keras.Sequential(layers)
    conv = _conv(variant)
    return keras.Sequential(
        [
            keras.Input((28, 28, 3)),
            conv(96, 5, "relu"),
            keras.layers.MaxPooling2D(3, 2, padding="valid"),
            keras.layers.Lambda(_lrn),
            conv(256, 5, "relu"),
            keras.layers.MaxPooling2D(3, 2, padding="valid"),
            keras.layers.Lambda(_lrn),
            keras.layers.Flatten(),
            dense(384, "relu"),
            dense(192, "relu"),
            dense(10),
        ]
    )


def _frozen_sn_kernels(model):
    """Effective kernels of the finite-beta SN layers, computed once."""
    return {
        layer: effective_kernel(layer)
        for layer in model.layers
        if is_spectral(layer) and np.isfinite(layer.beta)
    }


def make_train_step(
    model, training_mode, eps, jit_compile=False, frozen_attack=False
):
    """One compiled ERM or PGM-15 (l2) training step.

    With ``frozen_attack`` the attack runs under ``kernel_override`` with the
    SN layers' effective kernels computed once per step (the same values as
    ``training=False`` forwards, which neither change ``u`` nor the kernel
    during the attack), instead of one power iteration per attack forward.
    """
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    step_size = 2.5 * eps / PGM_STEPS

    def pgm(x):
        # Minimal l2 PGM on predicted labels (spec §4); u is read-only here.
        labels = tf.argmax(model(x, training=False), axis=-1)
        delta = tf.zeros_like(x)
        for _ in tf.range(PGM_STEPS):
            with tf.GradientTape() as tape:
                tape.watch(delta)
                loss = loss_fn(labels, model(x + delta, training=False))
            grad = tape.gradient(loss, delta)
            norm = tf.sqrt(
                tf.reduce_sum(tf.square(grad), axis=[1, 2, 3], keepdims=True)
            )
            delta = delta + step_size * grad / (norm + 1e-12)
            dnorm = tf.sqrt(
                tf.reduce_sum(tf.square(delta), axis=[1, 2, 3], keepdims=True)
            )
            delta = delta * tf.minimum(1.0, eps / (dnorm + 1e-12))
        return tf.stop_gradient(x + delta)

    @tf.function(jit_compile=jit_compile)
    def step(x, y):
        if training_mode == "pgm" and frozen_attack:
            with kernel_override(_frozen_sn_kernels(model)):
                x = pgm(x)
        elif training_mode == "pgm":
            x = pgm(x)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return step


def time_steps(step, x, y, n):
    """Wall and process-CPU seconds per step (CPU: all threads together)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(n):
        loss = step(x, y)
    float(loss)  # Wait for the last step.
    wall = (time.perf_counter() - start) / n
    return wall, (time.process_time() - cpu_start) / n


def bench_row(
    arch, training_mode, variants, rounds, steps, warmup, jit, frozen=False
):
    rng = np.random.default_rng(0)
    channels = 1 if arch.startswith("mlp") else 3
    x = tf.constant(rng.normal(size=(BATCH, 28, 28, channels)), tf.float32)
    y = tf.constant(rng.integers(0, 10, size=BATCH))
    eps = 0.05 * float(np.sqrt(28 * 28 * channels))
    steps_fns = {}
    for variant in variants:
        keras.utils.set_random_seed(0)
        model = build_model(arch, variant)
        steps_fns[variant] = make_train_step(
            model, training_mode, eps, jit_compile=jit, frozen_attack=frozen
        )
        for _ in range(warmup):
            float(steps_fns[variant](x, y))
    walls = {v: [] for v in variants}
    cpus = {v: [] for v in variants}
    for i in range(rounds):
        # Alternate the order too, so neither variant always runs first.
        order = variants if i % 2 == 0 else variants[::-1]
        for variant in order:
            wall, cpu = time_steps(steps_fns[variant], x, y, steps)
            walls[variant].append(wall)
            cpus[variant].append(cpu)
    # The minimum over rounds: the least-disturbed estimate on a shared CPU;
    # and the median over rounds of the ratio within a round (both variants
    # timed back to back, so slow drift cancels).
    paired = {
        v: float(np.median(np.array(walls[v]) / np.array(walls["plain"])))
        for v in variants
    }
    return (
        {v: min(t) for v, t in walls.items()},
        {v: min(t) for v, t in cpus.items()},
        paired,
    )


def _loadavg():
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="mlp1,mlp2,alexnet")
    parser.add_argument("--modes", default="erm,pgm")
    parser.add_argument("--variants", default="plain,sn,sn_inf")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--erm_steps", type=int, default=10)
    parser.add_argument("--pgm_steps", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--jit_compile", action="store_true")
    parser.add_argument(
        "--frozen_attack",
        action="store_true",
        help="PGM under kernel_override with once-per-step SN kernels.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TF intra- and inter-op threads (0: TF default).",
    )
    parser.add_argument("--out", default=None, help="Markdown file to write.")
    args = parser.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    load_before = _loadavg()
    variants = args.variants.split(",")
    header = "| model | training | " + " | ".join(
        f"{v} ms/step" for v in variants
    )
    ratio_cols = [v for v in variants if v != "plain"]
    header += " | " + " | ".join(f"{v}/plain" for v in ratio_cols)
    header += " | " + " | ".join(f"{v}/plain CPU" for v in ratio_cols)
    header += " | " + " | ".join(f"{v}/plain paired" for v in ratio_cols) + " |"
    ncols = 2 + len(variants) + 3 * len(ratio_cols)
    lines = [header, "|" + "---|" * ncols]
    for arch in args.archs.split(","):
        for mode in args.modes.split(","):
            steps = args.erm_steps if mode == "erm" else args.pgm_steps
            if arch == "alexnet":
                steps = max(1, steps // 2)
            t, cpu, paired = bench_row(
                arch,
                mode,
                variants,
                args.rounds,
                steps,
                args.warmup,
                args.jit_compile,
                args.frozen_attack,
            )
            row = f"| {arch} | {mode.upper()}{'-15' if mode == 'pgm' else ''}"
            row += " | " + " | ".join(f"{1e3 * t[v]:.1f}" for v in variants)
            row += " | " + " | ".join(
                f"{t[v] / t['plain']:.3f}x" for v in ratio_cols
            )
            row += " | " + " | ".join(
                f"{cpu[v] / cpu['plain']:.3f}x" for v in ratio_cols
            )
            row += " | " + " | ".join(f"{paired[v]:.3f}x" for v in ratio_cols)
            row += " |"
            lines.append(row)
            print(row, flush=True)
    device = tf.config.list_logical_devices()
    info = (
        f"TF {tf.__version__}, Keras {keras.__version__}, "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, devices: "
        f"{', '.join(d.device_type for d in device)}; batch {BATCH}; "
        f"fastest of {args.rounds} alternating rounds (wall; CPU = process "
        f"CPU time, all threads; paired = median over rounds of the "
        f"within-round wall ratio); XLA: {args.jit_compile}; "
        f"frozen attack kernels: {args.frozen_attack}; threads: "
        f"{args.threads or 'TF default'}; load average "
        f"before/after: {load_before} / {_loadavg()}"
    )
    table = "\n".join(lines)
    print(info)
    if args.out:
        command = "python benchmarks/bench_sn_layers.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        with open(args.out, "a") as f:
            f.write(f"\n## `{command}`\n\n{info}\n\n{table}\n")


if __name__ == "__main__":
    main()
