"""Time of the certificates on MNIST, and joint interval vs tau+zeta.

Trains the NSR paper's bias-free 784-128-64-32-10 ReLU MLP (SN, beta given)
for ``--epochs`` on ``--train`` bundled MNIST images, then times on the
first ``--test`` test images:

* ``certified_surface`` over a 6x6 (eps_x, eps_w) grid (one batched joint
  interval pass per grid point and batch);
* ``certified_accuracy`` (l2) at four radii (one margin pass + ``L``);

and prints, at a few grid points, the certified fraction of the joint
interval bound beside the ``sound`` and ``interval_exact`` tau + zeta
bounds used as certificates (``bound_certified_accuracy``).

Run:
    python benchmarks/bench_certify.py [--test 10000] [--epochs 1]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Run from a checkout without installing it (as the other benchmarks do).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from nsr_tf import data  # noqa: E402
from nsr_tf import evaluation  # noqa: E402
from nsr_tf import models  # noqa: E402

EPS_X = np.linspace(0.0, 0.01, 6)
EPS_W = np.linspace(0.0, 0.001, 6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--test", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--beta", type=float, default=float("inf"))
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args(argv)
    x, y = data.load("mnist", "train")
    xt, yt = data.load("mnist", "test")
    xt, yt = xt[: args.test], yt[: args.test]
    keras.utils.set_random_seed(0)
    model = models.build("nsr_mlp", input_shape=(28, 28, 1), beta=args.beta)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(
        x[: args.train], y[: args.train], batch_size=100,
        epochs=args.epochs, verbose=0,
    )  # fmt: skip
    print(f"{len(xt)} test images, beta={args.beta}")
    kw = dict(batch_size=args.batch_size)
    evaluation.certified_surface(model, xt[:10], yt[:10], EPS_X, EPS_W)
    start = time.perf_counter()
    acc, auc = evaluation.certified_surface(model, xt, yt, EPS_X, EPS_W, **kw)
    took = time.perf_counter() - start
    print(f"certified_surface 6x6: {took:.2f} s (auc {auc:.3f})")
    print(np.array2string(acc, precision=3))
    start = time.perf_counter()
    cert = evaluation.certified_accuracy(
        model, xt, yt, eps=[0.1, 0.25, 0.5, 1.0], **kw
    )
    took = time.perf_counter() - start
    print(f"certified_accuracy l2 x4: {took:.2f} s: {cert}")
    for i, j in [(0, 1), (1, 0), (1, 1), (2, 2)]:
        row = {
            v: evaluation.bound_certified_accuracy(
                model,
                xt[:1000],
                yt[:1000],
                eps_x=EPS_X[i],
                eps_w=EPS_W[j],
                variant=v,
            )  # fmt: skip
            for v in ("joint_interval", "interval_exact", "sound")
        }
        print(f"eps_x={EPS_X[i]:.4f} eps_w={EPS_W[j]:.5f}: {row}")


if __name__ == "__main__":
    main()
