"""RobustModel's training loss against an independent NumPy re-derivation.

Every mode's loss is re-derived here from the specs alone (no ``nsr_tf``
attack or bound code): a float64 NumPy forward/backward pass of a bias-free
ReLU MLP, the SN paper's FGM / PGM / WRM loops (spec sn_paper.md §4) and the
NSR paper's eq. 23 penalty with tau (eq. 21) and zeta (Lemma 1 / eq. 22),
where the max over ``y' != y`` is an explicit loop and ``W^{1*}`` is built per
example as ``W^1 + sgn(x) eps_1`` (nsr_paper.md §2.2-2.4, nsr_bounds.md §1).
The library's value comes from ``fit`` with ``SGD(0)`` (weights unchanged).
"""

import keras
import numpy as np
import pytest

from nsr_tf import data as nsr_data
from nsr_tf import models
from nsr_tf.training import RobustConfig
from nsr_tf.training import robustify

NUM_CLASSES = 3
SHAPE = (4, 4, 1)
HIDDEN = (6, 5)  # L = 4 layers, as the NSR network: 3 terms in zeta's bracket


# ------------------------------------------------------------ reference


def _kernels(model):
    """Keras kernels (in, out) of the bias-free MLP, as float64."""
    return [w.numpy().astype(np.float64) for w in model.trainable_weights]


def _forward(kernels, x):
    """Pre-activations and logits of ``K_L relu(... relu(x K_1))``."""
    h, zs = x, []
    for k in kernels[:-1]:
        z = h @ k
        zs.append(z)
        h = np.maximum(z, 0.0)
    return zs, h @ kernels[-1]


def _ce_and_grad(kernels, x, y):
    """Per-example CE and its gradient with respect to the input."""
    zs, logits = _forward(kernels, x)
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    ce = -np.log(p[np.arange(len(y)), y])
    g = p.copy()
    g[np.arange(len(y)), y] -= 1.0
    g = g @ kernels[-1].T
    for k, zm in zip(kernels[-2::-1], zs[::-1], strict=True):
        g = (g * (zm > 0)) @ k.T
    return ce, g


def _l2(v):
    return np.sqrt(np.sum(v**2, axis=1, keepdims=True))


def _np_attack(cfg, kernels, x, labels):
    """SN paper §4 attacks (no clip, no random start), float64."""

    def grad(z):
        return _ce_and_grad(kernels, z, labels)[1]

    eps = cfg.eps
    if cfg.mode == "fgm":
        g = grad(x)
        d = np.sign(g) if cfg.norm == np.inf else g / (_l2(g) + 1e-24)
        return x + eps * d
    if cfg.mode == "wrm":
        e = 1.0 / (2.0 * cfg.gamma)
        x_adv = x + e * grad(x)
        for t in range(cfg.steps):
            x_adv = x_adv + (t + 2) ** -0.5 * (e * grad(x_adv) - (x_adv - x))
        return x_adv
    x_adv = x.copy()  # pgm, at, at_beta
    for _ in range(cfg.steps):
        g = grad(x_adv)
        if cfg.norm == np.inf:
            x_adv = x_adv + cfg.step_size * np.sign(g)
            x_adv = np.clip(x_adv, x - eps, x + eps)
        else:
            x_adv = x_adv + cfg.step_size * g / (_l2(g) + 1e-24)
            delta = x_adv - x
            x_adv = x + delta / np.maximum(1.0, _l2(delta) / eps)
    return x_adv


def _row_inf(w):
    """||W||_inf: max row l1 sum (W is out x in)."""
    return np.max(np.sum(np.abs(w), axis=1))


def _np_tau_zeta(kernels, x, y, *, eps_x, eps_w, variant):
    """Per-example max_{y'!=y} tau^{y'y} and zeta^{y'y}(x), eq. 23, literal.

    W^m = kernel^T (out x in), d_m = fan-in, N_m = ||W^m||_inf.
    tau = eps_x (||W^L_y' - W^L_y||_1 + 2 d_L eps) prod_{m<L} (N_m + d_m eps).
    zeta = c [eps ||x||_1 N_2 ... N_{L-1}
              + sum_{k=1}^{L-2} eps ||h^{k*}||_1 prod_{m=k+2}^{L-1} N_m]
           + 2 eps ||h^{L-1*}||_1      ("lemma", "sound": Lemma 1 placement)
    or c [... + 2 eps ||h^{L-1*}||_1] ("paper": Theorem 2 as printed), with
    h^{1*} = relu((W^1 + sgn(x) eps) x) and h^{k*} = relu(W^{k*} h^{k-1*}),
    W^{k*} = W^k + eps ("paper", "lemma") or max(W^k + eps, 0) ("sound").
    """
    ws = [k.T for k in kernels]
    n_layers = len(ws)
    big_l = ws[-1]
    norms = [_row_inf(w) for w in ws]
    fan_in = [w.shape[1] for w in ws]
    prod_tau = np.prod(
        [norms[m] + fan_in[m] * eps_w for m in range(n_layers - 1)]
    )
    taus, zetas = [], []
    for xb, yb in zip(x, y, strict=True):
        w1_star = ws[0] + np.sign(xb)[None, :] * eps_w
        hs = [np.maximum(w1_star @ xb, 0.0)]  # h^{1*}
        for w in ws[1:-1]:
            star = w + eps_w
            if variant == "sound":
                star = np.maximum(star, 0.0)
            hs.append(np.maximum(star @ hs[-1], 0.0))
        bracket = eps_w * np.sum(np.abs(xb)) * np.prod(norms[1:-1])
        for k in range(1, n_layers - 1):  # k = 1 .. L-2
            bracket += (
                np.prod(norms[k + 1 : n_layers - 1]) * eps_w * np.sum(hs[k - 1])
            )
        last = 2.0 * eps_w * np.sum(hs[-1])
        best_tau = best_zeta = -np.inf
        for other in range(big_l.shape[0]):
            if other == yb:
                continue
            c = np.sum(np.abs(big_l[other] - big_l[yb]))
            tau = eps_x * (c + 2.0 * fan_in[-1] * eps_w) * prod_tau
            if variant == "paper":
                zeta = c * (bracket + last)
            else:
                zeta = c * bracket + last
            best_tau = max(best_tau, tau)
            best_zeta = max(best_zeta, zeta)
        taus.append(best_tau)
        zetas.append(best_zeta)
    return np.array(taus), np.array(zetas)


def _np_loss(cfg, kernels, x, y):
    """The per-batch objective of ``cfg`` (mean over the batch)."""
    clean_logits = _forward(kernels, x)[1]
    x_ce = x
    if cfg.mode in ("fgm", "pgm", "wrm", "at", "at_beta"):
        labels = y if cfg.labels == "true" else clean_logits.argmax(axis=1)
        x_ce = _np_attack(cfg, kernels, x, labels)
    loss = np.mean(_ce_and_grad(kernels, x_ce, y)[0])
    if cfg.mode in ("weight_perturb", "at_beta", "jiwp"):
        tau, zeta = _np_tau_zeta(
            kernels, x, y, eps_x=cfg.eps_x, eps_w=cfg.eps_w, variant=cfg.variant
        )
        penalty = np.mean(cfg.tau_weight * tau + cfg.zeta_weight * zeta)
        loss += cfg.penalty_scale * penalty
    return loss


# ---------------------------------------------------------------- tests


@pytest.fixture
def batch(gaussian_clusters):
    """Gaussian clusters (inputs of both signs, so sgn(x) matters)."""
    return gaussian_clusters(24, NUM_CLASSES, SHAPE)


def _library_loss(model, x, y):
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    hist = model.fit(x, y, batch_size=len(y), epochs=1, verbose=0).history
    return hist["loss"][0]


CASES = [
    ("erm", {}),
    ("fgm", dict(eps=0.8, norm=2)),
    ("fgm", dict(eps=0.2, norm="inf", labels="true")),
    ("pgm", dict(eps=0.8, norm=2, steps=4)),
    ("pgm", dict(eps=0.2, norm="inf", steps=4)),
    ("wrm", dict(gamma=0.5, steps=3, labels="true")),
    ("at", dict(eps=0.2, steps=3)),
    ("weight_perturb", {}),  # Fig. 1b defaults, penalty_scale 1/50
    ("weight_perturb", dict(tau_weight=0.25, zeta_weight=0.25, eps_w=0.01,
                            penalty_scale=1.0)),
    ("at_beta", dict(eps=0.1, steps=2, tau_weight=0.1, zeta_weight=0.4,
                     eps_w=0.01, penalty_scale=1.0)),
    ("jiwp", {}),  # Fig. 1f defaults, penalty_scale 1/50
    ("jiwp", dict(tau_weight=0.3, zeta_weight=0.2, eps_w=0.03, eps_x=0.1,
                  penalty_scale=1.0, variant="paper")),
    ("jiwp", dict(tau_weight=0.3, zeta_weight=0.2, eps_w=0.03, eps_x=0.1,
                  penalty_scale=1.0, variant="lemma")),
]  # fmt: skip


@pytest.mark.parametrize("mode, kwargs", CASES)
def test_training_loss_matches_numpy_rederivation(mode, kwargs, batch):
    x, y = batch
    net = models.build(
        "nsr_mlp", input_shape=SHAPE, num_classes=NUM_CLASSES,
        hidden_units=HIDDEN,
    )  # fmt: skip
    model = robustify(net, RobustConfig(mode=mode, **kwargs))
    kernels = _kernels(model)
    want = _np_loss(model.robust_config, kernels, x.reshape(len(y), -1), y)
    if mode != "erm":  # the robust terms matter: the check can fail
        cfg = RobustConfig(mode="erm")
        plain = _np_loss(cfg, kernels, x.reshape(len(y), -1), y)
        assert abs(want - plain) > 2e-3 * plain  # 100x the tolerance
    assert _library_loss(model, x, y) == pytest.approx(want, rel=2e-5)


def test_penalty_gradient_is_the_gradient_of_eq23(batch):
    """One SGD(1) step moves the weights by -d(eq. 23)/dW, compared with
    central finite differences of the NumPy objective (float64)."""
    x, y = batch
    net = models.build(
        "nsr_mlp", input_shape=SHAPE, num_classes=NUM_CLASSES,
        hidden_units=HIDDEN,
    )  # fmt: skip
    cfg = RobustConfig(
        mode="jiwp", tau_weight=0.3, zeta_weight=0.2, eps_w=0.03, eps_x=0.1,
        penalty_scale=1.0,
    )  # fmt: skip
    model = robustify(net, cfg)
    kernels = _kernels(model)
    xf = x.reshape(len(y), -1).astype(np.float64)
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    model.fit(x, y, batch_size=len(y), epochs=1, verbose=0)
    step = [k - new for k, new in zip(kernels, _kernels(model), strict=True)]
    h = 1e-6
    for m, kernel in enumerate(kernels):
        fd = np.zeros_like(kernel)
        for idx in np.ndindex(kernel.shape):
            for sign in (1.0, -1.0):
                moved = [k.copy() for k in kernels]
                moved[m][idx] += sign * h
                fd[idx] += sign * _np_loss(cfg, moved, xf, y) / (2 * h)
        np.testing.assert_allclose(step[m], fd, rtol=1e-3, atol=2e-5)


@pytest.fixture(scope="module")
def mnist_batch():
    x, y = nsr_data.load("mnist", "train")
    idx = np.random.default_rng(3).permutation(len(x))[:20]
    return x[idx], y[idx].astype("int64")


@pytest.mark.parametrize(
    "kwargs, zeta_range",
    [
        # NSR Fig. 1(b) Weight Perturb and (f) JIWP (nsr_paper.md §2.5).
        (dict(mode="weight_perturb", tau_weight=0.25, zeta_weight=0.25,
              eps_w=0.01, penalty_scale=1.0),
         (5e2, 5e3)),
        (dict(mode="jiwp", tau_weight=0.02, zeta_weight=0.02, eps_w=0.02,
              eps_x=0.3, penalty_scale=1.0),
         (1e3, 1e4)),
    ],
)  # fmt: skip
def test_paper_settings_at_init_on_real_mnist(kwargs, zeta_range, mnist_batch):
    """At the paper's size and settings the loss is the literal eq. 23, and
    its penalty is O(1e3) at Glorot init, as the spec's own scale check
    found (nsr_paper.md §2.5: zeta(0.01) ~ 1.4e3, zeta(0.02) ~ 3.1e3)."""
    x, y = mnist_batch
    keras.utils.set_random_seed(0)
    net = models.build("nsr_mlp", input_shape=(28, 28, 1))
    model = robustify(net, RobustConfig(**kwargs))
    cfg = model.robust_config
    kernels = _kernels(model)
    xf = x.reshape(len(y), -1).astype(np.float64)
    tau, zeta = _np_tau_zeta(
        kernels, xf, y, eps_x=cfg.eps_x, eps_w=cfg.eps_w, variant=cfg.variant
    )
    assert zeta_range[0] < np.mean(zeta) < zeta_range[1]
    want = _np_loss(cfg, kernels, xf, y)
    assert want > 100 * np.log(10.0)  # the penalty dwarfs the CE at init
    assert _library_loss(model, x, y) == pytest.approx(want, rel=2e-5)
