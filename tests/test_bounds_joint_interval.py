"""Joint interval bound: soundness by exhaustive search, exactness, variant."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from nsr_tf import bounds
from nsr_tf import models
from nsr_tf.bounds import affine as aff
from nsr_tf.bounds import joint_interval as ji
from nsr_tf.training import RobustConfig
from nsr_tf.training import robustify


def _tiny(rng, bias=True):
    """A 2-3-2 ReLU network, float64, Keras layout."""
    w1, w2 = rng.normal(size=(2, 3)), rng.normal(size=(3, 2))
    b1 = rng.normal(size=3) * 0.3 if bias else None
    b2 = rng.normal(size=2) * 0.3 if bias else None
    return [aff.dense_layer(w1, b1), aff.dense_layer(w2, b2)]


def _np_logits(x, w1, b1, w2, b2):
    """Batched logits: x (N, 2), w1 (N, 2, 3), b1 (N, 3), ... -> (N, 2)."""
    h = np.maximum(np.einsum("ni,nij->nj", x, w1) + b1, 0.0)
    return np.einsum("ni,nij->nj", h, w2) + b2


def _vertices(center, radius):
    """Every vertex of the box ``center +- radius`` (flattened): (2^d, d)."""
    c = np.ravel(center)
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=c.size)))
    return c + radius * signs


def _search(layers, x0, eps_x, eps_w, rng, n_random=20000):
    """Worst margin f_y - f_other over vertices and random points of the
    joint box, for each of the 2 classes y: array (2,)."""
    w1, w2 = np.asarray(layers[0].kernel), np.asarray(layers[1].kernel)
    b1, b2 = np.asarray(layers[0].bias), np.asarray(layers[1].bias)
    params = np.concatenate([w1.ravel(), b1, w2.ravel(), b2])
    p_vert = _vertices(params, eps_w)  # 2^17 weight/bias vertices
    x_vert = _vertices(x0, eps_x)
    p_rand = params + eps_w * rng.uniform(-1, 1, (n_random, params.size))
    x_rand = x0 + eps_x * rng.uniform(-1, 1, (n_random, 2))
    worst = np.full(2, np.inf)
    chunks = [(p_vert, xv) for xv in x_vert] + [(p_rand, x_rand)]
    for p, xs in chunks:
        n = len(p)
        xs = np.broadcast_to(xs, (n, 2))
        logits = _np_logits(
            xs,
            p[:, :6].reshape(n, 2, 3),
            p[:, 6:9],
            p[:, 9:15].reshape(n, 3, 2),
            p[:, 15:],
        )
        d = logits[:, 0] - logits[:, 1]
        worst = np.minimum(worst, [d.min(), (-d).min()])
    return worst


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("eps_x,eps_w", [(0.1, 0.0), (0.0, 0.05), (0.1, 0.05)])
def test_sound_against_exhaustive_search(seed, eps_x, eps_w):
    rng = np.random.default_rng(seed)
    layers = _tiny(rng)
    x0 = rng.normal(size=(1, 2))
    lower = ji.pairwise_margin_lower_bounds(
        layers, x0, eps_x=eps_x, eps_w=eps_w
    ).numpy()[0]
    worst = _search(layers, x0[0], eps_x, eps_w, rng)
    bound = np.array([lower[0, 1], lower[1, 0]])
    gap = worst - bound
    print(f"seed={seed} eps=({eps_x}, {eps_w}) worst={worst} gap={gap}")
    assert np.all(gap >= -1e-12), gap
    # Tightness on this tiny net (recorded; loose enough to be robust).
    assert np.all(gap <= 2.0), gap


def test_first_layer_box_is_exact(rng):
    """With non-negative inputs one affine layer's box is attained at the
    box vertices (the interval product is exact per term)."""
    w = rng.normal(size=(3, 2))
    b = rng.normal(size=2)
    layer = aff.dense_layer(w, b)
    x0 = rng.uniform(0.2, 1.0, size=(1, 3))
    eps_x, eps_w = 0.1, 0.2
    lo, hi = ji._affine_bounds(
        layer, x0 - eps_x, x0 + eps_x, eps_w, eps_w, signed=False
    )
    for j in range(2):
        vals = [
            (x0[0] + sx * eps_x) @ (w[:, j] + sw * eps_w) + b[j] + sb * eps_w
            for sx in _vertices(np.zeros(3), 1.0)
            for sw in _vertices(np.zeros(3), 1.0)
            for sb in (-1, 1)
        ]
        np.testing.assert_allclose(lo.numpy()[0, j], min(vals), atol=1e-12)
        np.testing.assert_allclose(hi.numpy()[0, j], max(vals), atol=1e-12)


def test_zero_radius_gives_clean_margins(rng):
    layers = _tiny(rng)
    x = rng.normal(size=(5, 2))
    lower = ji.pairwise_margin_lower_bounds(layers, x, eps_x=0.0, eps_w=0.0)
    f = bounds.forward(layers, x).numpy()
    np.testing.assert_allclose(
        lower.numpy(), f[:, :, None] - f[:, None, :], atol=1e-12
    )


def test_conv_net_sound_on_random_points(rng):
    """Conv (stride 2, same) -> dense: random joint perturbations never go
    below the bound."""
    k1 = rng.normal(size=(2, 2, 1, 2))
    b1 = rng.normal(size=2) * 0.1
    w2 = rng.normal(size=(8, 3))
    layers = [
        aff.conv_layer(k1, b1, strides=2, padding="same"),
        aff.dense_layer(w2),
    ]
    x = rng.uniform(0, 1, size=(4, 4, 4, 1))
    y = np.array([0, 1, 2, 0])
    eps_x, eps_w = 0.05, 0.02
    lower = ji.margin_lower_bounds(
        layers, x, y, eps_x=eps_x, eps_w=eps_w, clip_min=0.0, clip_max=1.0
    ).numpy()
    for _ in range(300):
        xp = np.clip(x + eps_x * rng.uniform(-1, 1, x.shape), 0, 1)
        kp = k1 + eps_w * rng.choice([-1.0, 1.0], k1.shape)
        bp = b1 + eps_w * rng.uniform(-1, 1, b1.shape)
        wp = w2 + eps_w * rng.choice([-1.0, 1.0], w2.shape)
        f = bounds.forward(
            [aff.conv_layer(kp, bp, strides=2, padding="same"),
             aff.dense_layer(wp)], xp,
        ).numpy()  # fmt: skip
        margins = f[np.arange(4), y][:, None] - f
        assert np.all(margins >= lower - 1e-9)


def test_penalty_bounds_true_increase(rng):
    layers = _tiny(rng)
    x0 = rng.normal(size=(1, 2))
    eps_x, eps_w = 0.05, 0.02
    f0 = bounds.forward(layers, x0).numpy()[0]
    inc = ji.margin_increase(layers, x0, [0], eps_x=eps_x, eps_w=eps_w).numpy()[
        0
    ]
    worst = _search(layers, x0[0], eps_x, eps_w, rng, n_random=2000)
    true_increase = (f0[0] - f0[1]) - worst[0]  # of f_1 - f_0
    assert np.isfinite(inc) and inc >= true_increase - 1e-12
    tau, zeta = bounds.margin_penalty(
        layers, x0, [0], eps_x=eps_x, eps_w=eps_w, variant="joint_interval"
    )
    assert float(tau[0]) == 0.0
    np.testing.assert_allclose(float(zeta[0]), inc, rtol=1e-12)
    t2, z2 = bounds.pairwise_tau_zeta(
        layers, x0, eps_x=eps_x, eps_w=eps_w, variant="joint_interval"
    )
    np.testing.assert_allclose(float(z2[0, 1, 0]), inc, rtol=1e-9)
    assert np.all(np.asarray(t2) == 0)


def test_training_step_with_variant(gaussian_clusters):
    x, y = gaussian_clusters(64, 3, (16,))
    net = models.build(
        "nsr_mlp", input_shape=(16,), num_classes=3, hidden_units=(8, 4)
    )
    config = RobustConfig(
        mode="jiwp", eps_x=0.05, eps_w=0.01, variant="joint_interval"
    )
    model = robustify(net, config)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    hist = model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    zeta = hist.history["zeta"][0]
    assert np.isfinite(hist.history["loss"][0]) and np.isfinite(zeta)
    assert zeta > 0
    # The penalty bounds the sampled worst increase on the trained net.
    layers = bounds.model_layers(model)
    inc = ji.margin_increase(layers, x[:8], y[:8], eps_x=0.05, eps_w=0.01)
    assert np.all(np.isfinite(inc.numpy())) and np.all(inc.numpy() >= 0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(eps_x=0.1, eps_w=-1.0), "eps_w"),
        (dict(eps_x=0.1, eps_w=[0.1]), "eps_w"),
        (dict(eps_x=0.1, eps_w=0.1, eps_b=float("nan")), "eps_b"),
    ],
)
def test_bad_radii(rng, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ji.pairwise_margin_lower_bounds(_tiny(rng), np.zeros((1, 2)), **kwargs)


def test_labels_rank_checked(rng):
    with pytest.raises(ValueError, match="y"):
        ji.margin_lower_bounds(
            _tiny(rng), np.zeros((1, 2)), tf.zeros((1, 2, 2)),
            eps_x=0.1, eps_w=0.0,
        )  # fmt: skip
