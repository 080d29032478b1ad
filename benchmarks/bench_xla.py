"""Benchmark: XLA-compiled (``jit_compile=True``) against graph training steps.

Not a test. Side by side in one process, for a Table 1 row on MNIST (the
bundled files, first ``--examples`` training images, batch 128, SN beta=2):
one epoch with each model per round, in alternating order, after one warm-up
epoch each; prints each round and the median of the within-round ratios
(XLA / graph), the figure ``BUILD.md`` quotes for the ``mlp`` preset.

Usage:
    python benchmarks/bench_xla.py [--arch mlp1] [--training fgm_l2]
        [--rounds 5] [--examples 7680]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from nsr_tf import data  # noqa: E402
from nsr_tf import models  # noqa: E402
from nsr_tf import training  # noqa: E402
from nsr_tf.sweep import rows as rows_lib  # noqa: E402


def _model(x, y, arch, setting, jit):
    keras.utils.set_random_seed(0)
    model = models.build(arch, beta=2.0, input_shape=x.shape[1:])
    robust = training.robustify(
        model, training.RobustConfig(**setting.as_config_kwargs())
    )
    robust.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    ds = data.to_dataset(x, y, batch_size=128, seed=0)
    robust.fit(ds, epochs=1, verbose=0, shuffle=False)  # trace and warm up
    return robust, ds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mlp1")
    parser.add_argument("--training", default="fgm_l2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--examples", type=int, default=7680)
    args = parser.parse_args()
    x, y = data.load("mnist", "train")
    x, y = x[: args.examples], y[: args.examples]
    setting = rows_lib.attack_setting(
        "mnist", args.training, data.mean_l2_norm(x)
    )
    built = {jit: _model(x, y, args.arch, setting, jit) for jit in (0, 1)}
    ratios = []
    for r in range(args.rounds):
        seconds = {}
        for jit in (0, 1) if r % 2 == 0 else (1, 0):
            robust, ds = built[jit]
            start = time.perf_counter()
            robust.fit(ds, epochs=1, verbose=0, shuffle=False)
            seconds[jit] = time.perf_counter() - start
        ratios.append(seconds[1] / seconds[0])
        print(f"round {r}: graph {seconds[0]:.3f} s, XLA {seconds[1]:.3f} s")
    print(
        f"{args.arch} {args.training}: XLA / graph, median of paired "
        f"ratios {np.median(ratios):.3f}"
    )


if __name__ == "__main__":
    main()
