"""Soundness: no joint perturbation pushes a margin above the sound bound.

Two attackers: a targeted joint sign-PGD written here (one weight copy per
(example, pair), maximizing f_i - f_j directly, clean and random starts), and
the project's own ``nsr_tf.attacks.joint_pgd`` with a CE and a margin loss.
The achieved increase of every pairwise margin must stay below
``tau + zeta`` of the "sound" (and both interval) variants, on random and
trained MLPs and on small conv nets, with and without biases.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from nsr_tf import bounds

REL_TOL = 1e-4  # float32 forward passes vs float64 bounds.


def _forward(layers, kernels, biases, x):
    swapped = [
        dataclasses.replace(a, kernel=k, bias=b)
        for a, k, b in zip(layers, kernels, biases, strict=True)
    ]
    return bounds.forward(swapped, x)


def _pgd_increases(layers, x, eps_x, eps_w, eps_b, steps=40, restarts=2):
    """Best achieved increase of f_i - f_j, shape (B, K, K).

    One attack copy (own input and weights) per (example, i, j), all run
    together: the weight gradient of the summed margins is each copy's own.
    """
    k = int(layers[-1].kernel.shape[-1])
    copies = [
        (b, i, j)
        for b in range(len(x))
        for i in range(k)
        for j in range(k)
        if i != j
    ]
    n = len(copies)
    idx = np.array(copies)
    has_bias = [a.bias is not None for a in layers]
    x0 = tf.constant(np.asarray(x, np.float32)[idx[:, 0]])
    k0 = [
        tf.tile(tf.cast(a.kernel, tf.float32)[None], [n] + [1] * a.kernel.ndim)
        for a in layers
    ]
    b0 = [
        tf.tile(tf.cast(a.bias, tf.float32)[None], [n, 1])
        if h
        else tf.zeros([n, 1])
        for a, h in zip(layers, has_bias, strict=True)
    ]
    ii, jj = tf.constant(idx[:, 1]), tf.constant(idx[:, 2])

    def margins(xs, ks, bs):
        def one(args):
            x1, kk, bb, i, j = args
            logits = _forward(
                layers,
                kk,
                [c if h else None for c, h in zip(bb, has_bias, strict=True)],
                x1[None],
            )
            return logits[0, i] - logits[0, j]

        return tf.vectorized_map(one, (xs, ks, bs, ii, jj))

    @tf.function
    def attack(noise, seed):
        def start(v, r, offset):
            u = tf.random.stateless_uniform(
                tf.shape(v), [seed, offset], -1.0, 1.0
            )
            return v + noise * r * u

        xs = start(x0, eps_x, 0)
        ks = [
            start(c, e, m + 1)
            for m, (c, e) in enumerate(zip(k0, eps_w, strict=True))
        ]
        bs = [
            start(c, e if h else 0.0, m + 50)
            for m, (c, e, h) in enumerate(zip(b0, eps_b, has_bias, strict=True))
        ]
        rate = 2.5 / steps
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch([xs, ks, bs])
                total = tf.reduce_sum(margins(xs, ks, bs))
            gx, gk, gb = tape.gradient(total, [xs, ks, bs])
            xs = tf.clip_by_value(
                xs + rate * eps_x * tf.sign(gx), x0 - eps_x, x0 + eps_x
            )
            ks = [
                tf.clip_by_value(v + rate * e * tf.sign(g), c - e, c + e)
                for v, g, c, e in zip(ks, gk, k0, eps_w, strict=True)
            ]
            bs = [
                tf.clip_by_value(v + rate * e * tf.sign(g), c - e, c + e)
                if h
                else v
                for v, g, c, e, h in zip(
                    bs, gb, b0, eps_b, has_bias, strict=True
                )
            ]
        return margins(xs, ks, bs) - margins(x0, k0, b0)

    best = np.max(
        [attack(float(r > 0), r).numpy() for r in range(restarts)], axis=0
    )
    out = np.zeros((len(x), k, k))
    out[idx[:, 0], idx[:, 1], idx[:, 2]] = best
    return out


def _check(layers, x, eps_x, eps_w, eps_b, achieved):
    for variant in ("sound", "interval", "interval_exact"):
        tau, zeta = bounds.pairwise_tau_zeta(
            layers,
            np.asarray(x, np.float64),
            eps_x=eps_x,
            eps_w=eps_w,
            eps_b=eps_b,
            variant=variant,
        )
        bound = tau.numpy()[None] + zeta.numpy()
        slack = REL_TOL * (np.abs(bound) + 1.0)
        assert np.all(achieved <= bound + slack), (
            variant,
            float((achieved - bound).max()),
        )
    return bound


def _as64(layers):
    return [
        dataclasses.replace(
            a,
            kernel=np.asarray(a.kernel, np.float64),
            bias=None if a.bias is None else np.asarray(a.bias, np.float64),
        )
        for a in layers
    ]


def _dense_layers(gen, widths, bias, scale=1.0):
    return [
        bounds.dense_layer(
            scale * gen.normal(size=(widths[m], widths[m + 1])),
            gen.normal(size=widths[m + 1]) * 0.3 if bias else None,
        )
        for m in range(len(widths) - 1)
    ]


def test_pgd_reaches_counterexample_a_prime():
    # The attacker is strong enough to exceed the printed and lemma bounds.
    layers = [
        bounds.dense_layer(np.array([[1.0, 1.0]])),
        bounds.dense_layer(np.array([[-1.0], [1.0]])),
        bounds.dense_layer(np.array([[1.0, 0.8]])),
    ]
    achieved = _pgd_increases(
        layers, np.ones((1, 1)), 0.0, [0.1] * 3, [0.0] * 3
    )
    assert achieved[0, 0, 1] > 0.128 + 1e-3  # the "lemma" bound
    np.testing.assert_allclose(achieved[0, 0, 1], 0.16, rtol=1e-4)


@pytest.mark.parametrize("depth, bias", [(2, False), (3, True), (4, False)])
def test_random_mlp(depth, bias, rng):
    widths = [4] + [5, 4, 5][: depth - 1] + [3]
    layers = _as64(_dense_layers(rng, widths, bias))
    x = rng.normal(size=(2, 4))
    eps_w = [0.1] * depth
    eps_b = [0.05] * depth
    achieved = _pgd_increases(layers, x, 0.05, eps_w, eps_b)
    bound = _check(layers, x, 0.05, eps_w, eps_b, achieved)
    off = ~np.eye(3, dtype=bool)[None].repeat(2, 0)
    assert np.mean(achieved[off] > 0) > 0.4
    assert np.min(bound[off] / np.maximum(achieved[off], 1e-9)) < 50


def test_near_tie_mlp_where_the_paper_form_fails(rng):
    layers = _dense_layers(rng, [3, 4, 4, 3], False)
    last = np.asarray(layers[-1].kernel).copy()
    last[:, 1] = last[:, 0] + 0.05 * rng.normal(size=4)
    layers[-1] = bounds.dense_layer(last)
    layers = _as64(layers)
    x = rng.normal(size=(2, 3))
    achieved = _pgd_increases(layers, x, 0.0, [0.2] * 3, [0.0] * 3)
    _check(layers, x, 0.0, [0.2] * 3, [0.0] * 3, achieved)


_TRAINED = {}


def _train_mlp(rng):
    """A small MLP with biases trained on 3 Gaussian clusters (cached)."""
    if "mlp" in _TRAINED:
        return _TRAINED["mlp"]
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(3, 6)) * 2
    y = rng.integers(0, 3, size=300)
    x = (centers[y] + rng.normal(size=(300, 6))).astype(np.float32)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.02),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    hist = model.fit(x, y, epochs=15, batch_size=50, verbose=0)
    assert hist.history["accuracy"][-1] > 0.8
    _TRAINED["mlp"] = (model, x[:2])
    return _TRAINED["mlp"]


def test_trained_mlp_with_biases(rng):
    model, x = _train_mlp(rng)
    layers = _as64(bounds.model_layers(model))
    eps_w = [0.02, 0.05, 0.05]
    achieved = _pgd_increases(layers, x, 0.05, eps_w, eps_w)
    _check(layers, x, 0.05, eps_w, eps_w, achieved)
    assert (
        np.mean(achieved[~np.eye(3, dtype=bool)[None].repeat(2, 0)] > 0) > 0.9
    )


def _conv_model(sn=False):
    from layers import SNConv2D
    from layers import SNDense

    conv = SNConv2D if sn else keras.layers.Conv2D
    dense = SNDense if sn else keras.layers.Dense
    extra = dict(beta=1.0) if sn else {}
    return keras.Sequential(
        [
            keras.Input((5, 5, 2)),
            conv(3, 3, padding="same", activation="relu", **extra),
            conv(2, 3, strides=2, padding="valid", activation="relu", **extra),
            keras.layers.Flatten(),
            dense(3, **extra),
        ]
    )


@pytest.mark.parametrize("sn", [False, True])
def test_small_conv_net(sn, rng):
    model = _conv_model(sn)
    layers = _as64(bounds.model_layers(model))
    x = rng.normal(size=(1, 5, 5, 2))
    eps_w = [0.05, 0.05, 0.1]
    achieved = _pgd_increases(layers, x, 0.05, eps_w, eps_w, steps=30)
    _check(layers, x, 0.05, eps_w, eps_w, achieved)


# ------------------------------------------------ the project's joint_pgd


def _margin_loss(labels, logits):
    k = logits.shape[-1]
    onehot = tf.one_hot(tf.cast(labels, tf.int32), k)
    true = tf.reduce_sum(onehot * logits, axis=1)
    other = tf.reduce_max(logits - 1e9 * onehot, axis=1)
    return other - true


@pytest.mark.parametrize(
    "net", ["trained_mlp", "random_mlp", "conv", "sn_conv"]
)
@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_joint_pgd_never_exceeds_the_sound_bound(net, loss, rng):
    from nsr_tf import perturb
    from nsr_tf.attacks import joint_pgd

    if net == "trained_mlp":
        model, x = _train_mlp(rng)
        x = np.concatenate([x, x + 0.5]).astype(np.float32)
    elif net == "random_mlp":
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dense(5, activation="relu"),
                keras.layers.Dense(4, activation="relu"),
                keras.layers.Dense(3),
            ]
        )
        x = rng.normal(size=(4, 6)).astype(np.float32)
    else:
        model = _conv_model(sn=net == "sn_conv")
        x = rng.normal(size=(4, 5, 5, 2)).astype(np.float32)
    eps_x, eps_w = 0.05, 0.03
    clean = model(x).numpy()
    y = clean.argmax(axis=1)
    x_adv, deltas = joint_pgd(
        model,
        x,
        y,
        eps_x=eps_x,
        eps_w=eps_w,
        steps=50,
        step_size_x=eps_x / 20,
        step_size_w=eps_w / 20,
        include_bias=True,
        loss_fn=None if loss == "ce" else _margin_loss,
    )
    targets = perturb.weight_targets(model, include_bias=True)
    adv = perturb.perturbed_call(model, x_adv, deltas, targets=targets).numpy()
    achieved = (adv[:, :, None] - adv[:, None, :]) - (
        clean[:, :, None] - clean[:, None, :]
    )
    layers = _as64(bounds.model_layers(model))
    bound = _check(layers, x, eps_x, eps_w, eps_w, achieved)
    # The attack did move the margins it targets.
    rows = np.arange(len(y))
    assert np.all(achieved[rows, :, y].max(axis=1) > 0)
    assert np.all(bound[rows, :, y].max(axis=1) > 0)


# ------------------------------- independent NumPy brute force (float64)


def _np_forward(ws, x):
    """Logits of a batch of perturbed bias-free nets: ws[m] is (S, out, in),
    x is (S, in)."""
    h = x
    for w in ws[:-1]:
        h = np.maximum(np.einsum("soi,si->so", w, h), 0.0)
    return np.einsum("soi,si->so", ws[-1], h)


def _pair_margins(logits):
    return logits[:, :, None] - logits[:, None, :]


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_sampled_perturbations_never_exceed_each_term(depth, rng):
    """Random and corner joint perturbations, evaluated with a plain NumPy
    forward pass: the weight part never exceeds zeta, the input part (at the
    same perturbed weights) never exceeds tau, for "sound" and both interval
    variants."""
    widths = [4] + list(rng.integers(2, 6, size=depth - 1)) + [3]
    kernels = [
        rng.normal(size=(widths[m], widths[m + 1])) for m in range(depth)
    ]
    # A near tie between classes 0 and 1 (where the printed form fails).
    kernels[-1][:, 1] = kernels[-1][:, 0] + 0.05 * rng.normal(size=widths[-2])
    eps_w = list(rng.choice([0.05, 0.1, 0.3], size=depth))
    eps_x = 0.1
    x = rng.normal(size=(3, 4))
    x[0, 1] = 0.0
    n = 600
    ws = [np.asarray(k).T for k in kernels]
    bounds_by_variant = {
        v: [
            t.numpy()
            for t in bounds.pairwise_tau_zeta(
                kernels, x, eps_x=eps_x, eps_w=eps_w, variant=v
            )
        ]
        for v in ("sound", "interval", "interval_exact")
    }
    best_w = np.zeros((3, 3, 3))
    for b in range(3):
        # Half uniform in the box, half on its corners.
        def draw(shape, radius):
            u = rng.uniform(-1.0, 1.0, size=(n, *shape))
            u[n // 2 :] = np.sign(u[n // 2 :])
            return radius * u

        what = [
            w[None] + draw(w.shape, e) for w, e in zip(ws, eps_w, strict=True)
        ]
        xs = np.repeat(x[b][None], n, axis=0)
        xhat = xs + draw(x[b].shape, eps_x)
        clean = _pair_margins(_np_forward([w[None] for w in ws], x[b][None]))
        at_x = _pair_margins(_np_forward(what, xs))
        at_xhat = _pair_margins(_np_forward(what, xhat))
        weight_part = (at_x - clean).max(axis=0)
        input_part = (at_xhat - at_x).max(axis=0)
        total = (at_xhat - clean).max(axis=0)
        best_w[b] = weight_part
        for v, (tau, zeta) in bounds_by_variant.items():
            tol = 1e-9 * (1 + np.abs(tau) + np.abs(zeta[b]))
            assert np.all(weight_part <= zeta[b] + tol), v
            assert np.all(input_part <= tau + tol), v
            assert np.all(total <= tau + zeta[b] + tol), v
    off = ~np.eye(3, dtype=bool)[None].repeat(3, 0)
    assert np.mean(best_w[off] > 0) > 0.5  # the sampler moves the margins


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_one_hidden_layer_is_attained(seed):
    """L = 2, all hidden units active, W^2_i - W^2_j >= 0 entry-wise: the
    maximizer is explicit (W^1 + sgn(x) eps_1, W^2_i + eps_2, W^2_j - eps_2)
    and attains D_ij eps_1 ||x||_1 + 2 eps_2 ||u^1||_1, which "sound" and
    both interval variants must equal exactly."""
    gen = np.random.default_rng(seed)
    w1 = gen.uniform(0.2, 1.0, size=(3, 4))  # out x in
    x = np.array([0.7, 0.0, -0.4, 1.1])
    w1[:, 2] = -gen.uniform(0.0, 0.1, size=3)  # W^1 x > eps_1 ||x||_1 > 0
    w2 = np.stack([gen.uniform(0.5, 1.0, 3), gen.uniform(0.0, 0.4, 3)])
    eps1, eps2 = 0.05, 0.1
    z = w1 @ x
    assert np.all(z > eps1 * np.abs(x).sum())
    h = np.maximum(z, 0.0)
    w1_hat = w1 + eps1 * np.sign(x)[None, :]
    w2_hat = w2 + np.array([[eps2], [-eps2]])
    h_hat = np.maximum(w1_hat @ x, 0.0)
    achieved = (w2_hat[0] - w2_hat[1]) @ h_hat - (w2[0] - w2[1]) @ h
    dist = np.abs(w2[0] - w2[1]).sum()
    closed = dist * eps1 * np.abs(x).sum() + 2 * eps2 * h_hat.sum()
    np.testing.assert_allclose(achieved, closed, rtol=1e-12)
    # At L = 2 the printed bracket counts eps_1 ||x||_1 twice (spec §1).
    doubled = closed + dist * eps1 * np.abs(x).sum()
    cases = (
        ("sound", closed),
        ("interval", closed),
        ("interval_exact", closed),
        ("lemma", doubled),
    )
    for v, want in cases:
        _, zeta = bounds.pairwise_tau_zeta(
            [w1.T, w2.T], x[None], eps_x=0.0, eps_w=[eps1, eps2], variant=v
        )
        np.testing.assert_allclose(zeta.numpy()[0, 0, 1], want, rtol=1e-12)
