"""Benchmark: our PGD-15 and joint PGD-100 against their compute floors and
against the Adversarial Robustness Toolbox (ART) TF2 PGD.

Not a test. Side by side in one run, for the SN paper's MNIST 2-layer ELU MLP
(784-512-512-10) and CIFAR mini-AlexNet (28x28x3), both from
``nsr_tf.models.build`` with beta=inf, batch 128, random inputs:

* ``pgd15``: ``nsr_tf.attacks.pgd`` (l_inf, 15 steps, y=None: one clean
  forward + 15 forward+backward passes) vs the floor of 16 forward+backward
  passes w.r.t. the inputs in a plain compiled ``tf.while_loop``;
  ``pgd15_l2`` the same in l2 (eps 0.5, about 0.05 C2 on MNIST);
* ``joint100``: ``nsr_tf.attacks.joint_pgd`` (100 steps, y=None) vs the floor
  of 101 forward+backward passes w.r.t. inputs and kernels; ``update100``
  times the attack's 100 sign-and-box updates of the inputs and kernels alone
  (``attacks._joint_core.box_step`` on fixed gradients: memory-bound, one
  read of the iterate, the gradient and the centre and one write per
  element), so
  ``joint100`` can be compared with ``floor101 + update100``;
* ``art_pgd15`` / ``art_pgd15_l2``: ART's ``ProjectedGradientDescent`` on a
  ``TensorFlowV2Classifier`` (15 steps, same eps/step, no random init), if
  ``adversarial-robustness-toolbox`` is installed (a bench dependency only).

Usage:
    python benchmarks/bench_attacks.py [--repeats 5] [--joint-repeats 3]
        [--models mlp2,alexnet] [--threads 2] [--batch 128]

``--joint-repeats 0`` skips the joint rows, ``--repeats 0`` the PGD rows.
``--batch 500`` is the batch ``evaluation.accuracy_surface`` attacks by
default (the NSR paper does not state its attack batch).

Times: one warm-up (compile) call each, then ``repeats`` interleaved calls
(the machine is shared); medians and minima are reported.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from nsr_tf import attacks  # noqa: E402
from nsr_tf import models  # noqa: E402
from nsr_tf import perturb  # noqa: E402
from nsr_tf.attacks import _joint_core  # noqa: E402

SHAPES = {"mlp2": (28, 28, 1), "alexnet": (28, 28, 3)}
EPS = 0.1
EPS_L2 = 0.5
BATCH = 128


def _ce(y, logits):
    return tf.reduce_sum(
        tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
    )


def input_floor(model):
    """n forward+backward passes w.r.t. the inputs (labels given)."""

    @tf.function
    def run(x, y, n):
        def body(i, xc):
            with tf.GradientTape() as tape:
                tape.watch(xc)
                loss = _ce(y, model(xc, training=False))
            g = tape.gradient(loss, xc)
            return i + 1, xc + 1e-12 * tf.sign(g)

        return tf.while_loop(lambda i, _: i < n, body, (0, x))[1]

    return run


def joint_floor(model):
    """n forward+backward passes w.r.t. the inputs and every kernel."""
    kernels = [t.variable for t in perturb.weight_targets(model)]

    @tf.function
    def run(x, y, n):
        def body(i, xc, s):
            with tf.GradientTape() as tape:
                tape.watch(xc)
                loss = _ce(y, model(xc, training=False))
            grads = tape.gradient(loss, [xc, *kernels])
            s = s + tf.add_n([tf.reduce_sum(g) for g in grads[1:]])
            return i + 1, xc + 1e-12 * tf.sign(grads[0]), s

        return tf.while_loop(
            lambda i, *_: i < n, body, (0, x, tf.constant(0.0))
        )[1]

    return run


def update_floor(model, x, steps=100):
    """``steps`` joint-PGD box updates of x and every kernel, fixed grads."""
    kernels = [t.variable for t in perturb.weight_targets(model)]
    rng = np.random.default_rng(1)
    grads = [
        tf.constant(rng.normal(size=v.shape), v.dtype) for v in [x, *kernels]
    ]

    @tf.function
    def run():
        centres = [tf.convert_to_tensor(x)] + [k.value for k in kernels]

        def body(i, values):
            return i + 1, [
                _joint_core.box_step(w, g, 1e-3, c, 0.01)
                for w, g, c in zip(values, grads, centres, strict=True)
            ]

        _, values = tf.while_loop(
            lambda i, _: i < steps, body, (0, list(centres))
        )
        return values[0]

    return run


def interleaved(fns, repeats):
    """Times every function ``repeats`` times, interleaved (ABAB...), so that
    load from other processes hits all of them alike. Returns
    {name: (median, min, runs, median process CPU seconds)} after one
    warm-up (compile) call each. CPU time (all threads of this process) is
    much less sensitive than wall time to other processes' load."""
    for fn in fns.values():
        _materialize(fn())
    runs = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for r in range(repeats):
        order = list(fns) if r % 2 == 0 else list(fns)[::-1]
        for key in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            _materialize(fns[key]())
            runs[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
    return {
        k: (statistics.median(v), min(v), v, statistics.median(cpu[k]))
        for k, v in runs.items()
    }


def _materialize(out):
    for t in tf.nest.flatten(out):
        np.asarray(t)


def art_pgd(model, x, norm=np.inf, eps=EPS, n_classes=10):
    try:
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import TensorFlowV2Classifier
    except ImportError:
        return None
    clf = TensorFlowV2Classifier(
        model=model,
        nb_classes=n_classes,
        input_shape=tuple(x.shape[1:]),
        loss_object=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    attack = ProjectedGradientDescent(
        clf,
        norm=norm,
        eps=eps,
        eps_step=2 * eps / 15,
        max_iter=15,
        num_random_init=0,
        batch_size=BATCH,
        verbose=False,
    )
    return lambda: attack.generate(x)


def bench_model(name, repeats, joint_repeats, batch=BATCH):
    keras.utils.set_random_seed(0)
    model = models.build(name, input_shape=SHAPES[name])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, *SHAPES[name])).astype(np.float32)
    xt = tf.constant(x)
    y = tf.argmax(model(xt, training=False), axis=-1)
    floor, jfloor = input_floor(model), joint_floor(model)
    group = {
        "floor16": lambda: floor(xt, y, tf.constant(16)),
        "pgd15": lambda: attacks.pgd(
            model, xt, EPS, norm=np.inf, steps=15, step_size=2 * EPS / 15
        ),
        "pgd15_l2": lambda: attacks.pgd(
            model, xt, EPS_L2, norm=2, steps=15, step_size=2 * EPS_L2 / 15
        ),
    }
    rows = {}
    if repeats > 0:
        art = art_pgd(model, x)
        if art is not None:
            group["art_pgd15"] = art
            group["art_pgd15_l2"] = art_pgd(model, x, norm=2, eps=EPS_L2)
        rows = interleaved(group, repeats)
    if joint_repeats < 1:  # PGD only (AlexNet's joint PGD-100 takes minutes)
        return rows
    update = update_floor(model, xt)
    rows.update(
        interleaved(
            {
                "floor101": lambda: jfloor(xt, y, tf.constant(101)),
                "joint100": lambda: attacks.joint_pgd(
                    model, xt, None, eps_x=EPS, eps_w=0.01
                ),
                "update100": update,
            },
            joint_repeats,
        )
    )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--joint-repeats", type=int, default=5)
    p.add_argument("--models", default="mlp2,alexnet")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=BATCH)
    args = p.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    print(
        f"TF {tf.__version__}, Keras {keras.__version__}, batch {args.batch}, "
        f"threads {args.threads}, devices "
        f"{[d.device_type for d in tf.config.list_physical_devices()]}"
    )
    for name in args.models.split(","):
        rows = bench_model(name, args.repeats, args.joint_repeats, args.batch)
        print(f"\n## {name}: seconds per batch of {args.batch}")
        print(
            "| run | wall median | wall min | CPU median | median / floor "
            "| min / floor | CPU / floor | wall runs |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for key, (med, low, runs, cpu) in rows.items():
            joint_rows = ("joint100", "floor101", "update100")
            ref = "floor101" if key in joint_rows else "floor16"
            print(
                f"| {key} | {med:.4f} | {low:.4f} | {cpu:.4f} | "
                f"{med / rows[ref][0]:.3f} | {low / rows[ref][1]:.3f} | "
                f"{cpu / rows[ref][3]:.3f} | "
                f"{', '.join(f'{t:.3f}' for t in runs)} |"
            )
        if "update100" in rows:
            f, u = rows["floor101"], rows["update100"]
            both = (f[0] + u[0], f[1] + u[1], None, f[3] + u[3])
            j = rows["joint100"]
            print(
                f"joint100 / (floor101 + update100): wall median "
                f"{j[0] / both[0]:.3f}, wall min {j[1] / both[1]:.3f}, CPU "
                f"{j[3] / both[3]:.3f}"
            )
        for ours_key in ("pgd15", "pgd15_l2"):
            if "art_" + ours_key not in rows:
                continue
            art, ours = rows["art_" + ours_key], rows[ours_key]
            print(
                f"ART / ours ({ours_key}): wall median {art[0] / ours[0]:.2f}x"
                f", wall min {art[1] / ours[1]:.2f}x, CPU "
                f"{art[3] / ours[3]:.2f}x"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
