"""nsr_tf.bounds.margin against an independent NumPy float64 reference.

The reference (``tests/_margin_reference.py``) is written from the formulas
of spec/nsr_bounds.md and the paper's Theorem 2; it shares no code with the
library.
"""

import numpy as np
import pytest
import tensorflow as tf

from nsr_tf import bounds
from tests._margin_reference import ref_pairwise
from tests._margin_reference import relu

VARIANTS = ("paper", "lemma", "sound", "interval", "interval_exact")


# -------------------------------------------------- hand-set networks

X_HAND = np.array(
    [[0.5, 0.0, -0.3, 1.2], [1.0, -1.0, 0.0, 0.2], [0.0, 0.7, 0.4, -0.6]]
)


def hand_network(depth):
    """Tiny networks 4 -> 3 -> ... -> 3 classes with one-decimal weights."""
    gen = np.random.default_rng(100 + depth)
    widths = [4] + [3, 4, 3, 4][: depth - 1] + [3]
    kernels = [
        np.round(gen.uniform(-1.0, 1.0, (widths[m], widths[m + 1])), 1)
        for m in range(depth)
    ]
    # A near tie between classes 0 and 1 (small D): where "paper" fails.
    kernels[-1][:, 1] = kernels[-1][:, 0] + np.array(
        [0.1, -0.1, 0.0, 0.1][: widths[-2]]
    )
    eps = [0.05, 0.1, 0.2, 0.05, 0.15][:depth]
    return kernels, eps


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
@pytest.mark.parametrize("variant", VARIANTS)
def test_pairwise_matches_numpy_reference(depth, variant):
    kernels, eps = hand_network(depth)
    tau, zeta = bounds.pairwise_tau_zeta(
        kernels, X_HAND, eps_x=0.07, eps_w=eps, variant=variant
    )
    ref_tau, ref_zeta = ref_pairwise(kernels, X_HAND, 0.07, eps, variant)
    assert tau.dtype == tf.float64
    np.testing.assert_allclose(tau.numpy(), ref_tau, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(zeta.numpy(), ref_zeta, rtol=1e-9, atol=1e-12)
    assert np.all(zeta.numpy() >= 0) or variant == "interval"


def _assert_max_over_wrong_classes(tau, zeta, kernels, eps, variant, y):
    """Per-example (tau, zeta) == max over y' != y of the NumPy reference."""
    ref_tau, ref_zeta = ref_pairwise(kernels, X_HAND, 0.07, eps, variant)
    for b, label in enumerate(y):
        others = [c for c in range(3) if c != label]
        np.testing.assert_allclose(
            tau.numpy()[b], ref_tau[others, label].max(), rtol=1e-9
        )
        np.testing.assert_allclose(
            zeta.numpy()[b], ref_zeta[b, others, label].max(), rtol=1e-9
        )


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
@pytest.mark.parametrize("variant", VARIANTS)
def test_margin_penalty_is_max_over_wrong_classes(depth, variant):
    kernels, eps = hand_network(depth)
    y = np.array([0, 1, 2])
    tau, zeta = bounds.margin_penalty(
        kernels, X_HAND, y, eps_x=0.07, eps_w=eps, variant=variant
    )
    _assert_max_over_wrong_classes(tau, zeta, kernels, eps, variant, y)


def test_scalar_eps_equals_repeated_per_layer_eps():
    kernels, _ = hand_network(4)
    a = bounds.pairwise_tau_zeta(kernels, X_HAND, eps_x=0.1, eps_w=0.03)
    b = bounds.pairwise_tau_zeta(kernels, X_HAND, eps_x=0.1, eps_w=[0.03] * 4)
    for s, t in zip(a, b, strict=True):
        np.testing.assert_array_equal(s.numpy(), t.numpy())


def test_paper_L2_counts_first_term_twice():
    # Printed Theorem 2 at L = 2: eps_1||x||_1 appears twice (spec §1).
    kernels = [np.eye(2), np.array([[1.0, 0.5], [0.0, 1.0]])]
    x = np.array([[1.0, -2.0]])
    _, paper = bounds.pairwise_tau_zeta(
        kernels, x, eps_x=0.0, eps_w=[0.1, 0.0], variant="paper"
    )
    _, sound = bounds.pairwise_tau_zeta(
        kernels, x, eps_x=0.0, eps_w=[0.1, 0.0], variant="sound"
    )
    dist = 1.5  # |1 - 0.5| + |0 - 1|
    np.testing.assert_allclose(paper.numpy()[0, 0, 1], dist * 2 * 0.1 * 3)
    np.testing.assert_allclose(sound.numpy()[0, 0, 1], dist * 0.1 * 3)


# ------------------------------------------------------- counterexamples


def _f(ws, x):
    h = x
    for w in ws[:-1]:
        h = relu(w @ h)
    return ws[-1] @ h


def test_counterexample_a_prime():
    """Spec §2 Example A': L = 3, all eps = 0.1, eps_x = 0."""
    kernels = [
        np.array([[1.0, 1.0]]),  # W^1 = [1; 1]
        np.array([[-1.0], [1.0]]),  # W^2 = [-1 1]
        np.array([[1.0, 0.8]]),  # W^3 = [1; 0.8]
    ]
    x = np.array([1.0])
    ws = [k.T for k in kernels]
    hats = [
        np.array([[0.9], [1.1]]),
        np.array([[-0.9, 1.1]]),
        np.array([[1.1], [0.7]]),
    ]
    for w, wh in zip(ws, hats, strict=True):
        assert np.abs(w - wh).max() <= 0.1 + 1e-12
    achieved = (_f(hats, x)[0] - _f(hats, x)[1]) - (_f(ws, x)[0] - _f(ws, x)[1])
    np.testing.assert_allclose(achieved, 0.16, rtol=1e-12)
    got = {
        v: bounds.pairwise_tau_zeta(
            kernels, x[None], eps_x=0.0, eps_w=0.1, variant=v
        )[1].numpy()[0, 0, 1]
        for v in VARIANTS
    }
    np.testing.assert_allclose(got["paper"], 0.0928, rtol=1e-9)
    np.testing.assert_allclose(got["lemma"], 0.128, rtol=1e-9)
    np.testing.assert_allclose(got["sound"], 0.326, rtol=1e-9)
    np.testing.assert_allclose(got["interval"], 0.164, rtol=1e-9)  # "ibp"
    # Exact last-layer maximization over the box attains the increase.
    np.testing.assert_allclose(got["interval_exact"], 0.16, rtol=1e-9)
    assert got["paper"] < achieved
    assert got["lemma"] < achieved
    assert got["sound"] >= achieved
    assert got["interval_exact"] >= achieved - 1e-12
    assert got["interval_exact"] <= got["interval"] <= got["sound"]


def test_counterexample_b():
    """Spec §2 Example B: L = 2, eps_2 = 0.1, others 0; sound is tight."""
    kernels = [np.eye(2), np.array([[1.0, 0.8], [1.0, 1.1]])]
    x = np.array([1.0, 1.0])
    ws = [k.T for k in kernels]
    hat2 = ws[1] + np.array([[0.1, 0.1], [-0.1, -0.1]])
    achieved = (_f([ws[0], hat2], x) @ [1, -1]) - (_f(ws, x) @ [1, -1])
    np.testing.assert_allclose(achieved, 0.4, rtol=1e-12)
    for v in VARIANTS:
        _, zeta = bounds.pairwise_tau_zeta(
            kernels, x[None], eps_x=0.0, eps_w=[0.0, 0.1], variant=v
        )
        value = zeta.numpy()[0, 0, 1]
        if v == "paper":
            np.testing.assert_allclose(value, 0.12, rtol=1e-9)
            assert value < achieved
        else:
            np.testing.assert_allclose(value, 0.4, rtol=1e-9)


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_interval_never_looser_than_sound(depth, rng):
    for trial in range(5):
        widths = rng.integers(2, 6, size=depth + 1)
        kernels = [
            rng.normal(size=(widths[m], widths[m + 1])) for m in range(depth)
        ]
        eps = list(rng.choice([0.01, 0.1, 0.3, 0.5], size=depth))
        x = rng.normal(size=(4, widths[0]))
        _, s = bounds.pairwise_tau_zeta(
            kernels, x, eps_x=0.1, eps_w=eps, variant="sound"
        )
        _, i = bounds.pairwise_tau_zeta(
            kernels, x, eps_x=0.1, eps_w=eps, variant="interval"
        )
        _, ie = bounds.pairwise_tau_zeta(
            kernels, x, eps_x=0.1, eps_w=eps, variant="interval_exact"
        )
        assert np.all(i.numpy() <= s.numpy() * (1 + 1e-12) + 1e-12), trial
        assert np.all(ie.numpy() <= i.numpy() * (1 + 1e-12) + 1e-12), trial


# ------------------------------------------------- TF-side properties


def test_float32_close_to_float64_and_traceable():
    kernels, eps = hand_network(4)
    k32 = [tf.Variable(k.astype(np.float32)) for k in kernels]
    x32 = X_HAND.astype(np.float32)
    y = tf.constant([0, 1, 2])

    @tf.function
    def loss(x):
        with tf.GradientTape() as tape:
            tau, zeta = bounds.margin_penalty(
                k32, x, y, eps_x=0.07, eps_w=eps, variant="sound"
            )
            total = tf.reduce_mean(tau + zeta)
        return total, tape.gradient(total, k32)

    total, grads = loss(x32)
    tau64, zeta64 = bounds.margin_penalty(
        kernels, X_HAND, y.numpy(), eps_x=0.07, eps_w=eps
    )
    np.testing.assert_allclose(
        total.numpy(), np.mean(tau64 + zeta64), rtol=1e-5
    )
    for g in grads:
        assert g is not None and np.all(np.isfinite(g.numpy()))
    assert any(np.abs(g.numpy()).sum() > 0 for g in grads)


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_with_penalty_shares_the_forward_pass(variant):
    kernels, eps = hand_network(3)
    y = np.array([2, 0, 1])
    logits, tau, zeta = bounds.forward_with_margin_penalty(
        kernels, X_HAND, y, eps_x=0.02, eps_w=eps, variant=variant
    )
    ws = [k.T for k in kernels]
    ref_logits = np.stack([_f(ws, xb) for xb in X_HAND])
    np.testing.assert_allclose(logits.numpy(), ref_logits, rtol=1e-12)
    t2, z2 = bounds.margin_penalty(
        kernels, X_HAND, y, eps_x=0.02, eps_w=eps, variant=variant
    )
    np.testing.assert_allclose(tau.numpy(), t2.numpy(), rtol=1e-12)
    np.testing.assert_allclose(zeta.numpy(), z2.numpy(), rtol=1e-12)
    z1 = X_HAND @ kernels[0]
    t3, z3 = bounds.margin_penalty(
        kernels,
        X_HAND,
        y,
        eps_x=0.02,
        eps_w=eps,
        variant=variant,
        first_preactivation=z1,
    )
    np.testing.assert_allclose(zeta.numpy(), z3.numpy(), rtol=1e-12)


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("variant", VARIANTS)
def test_compiled_forms_match_numpy_reference(variant, jit_compile):
    # Compiled by XLA and run by TF's graph executor, the bounds are checked
    # against the NumPy reference, with the forward pass shared.
    kernels, eps = hand_network(4)
    y = np.array([2, 0, 1])

    @tf.function(jit_compile=jit_compile)
    def run(x):
        return bounds.forward_with_margin_penalty(
            kernels, x, y, eps_x=0.07, eps_w=eps, variant=variant
        )

    logits, tau, zeta = run(tf.constant(X_HAND))
    _assert_max_over_wrong_classes(tau, zeta, kernels, eps, variant, y)
    ref_logits = np.stack([_f([k.T for k in kernels], xb) for xb in X_HAND])
    np.testing.assert_allclose(logits.numpy(), ref_logits, rtol=1e-12)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_dense_inf_norm_value_and_one_column_gradient(jit_compile, rng):
    # N = max_j sum_i |K_ij|; its gradient is sign(K[:, j*]) in column j*
    # (a NumPy re-derivation), equal to autodiff of the plain formula when
    # the max is unique, and the tape reaches a variable kernel.
    k = rng.normal(size=(7, 5))
    k[2, 3] = 0.0  # sign(0) = 0
    kernel = tf.Variable(k)
    layer = bounds.affine.dense_layer(kernel)

    @tf.function(jit_compile=jit_compile)
    def run():
        with tf.GradientTape(persistent=True) as tape:
            n = bounds.affine.inf_norm(layer)
            plain = tf.reduce_max(tf.reduce_sum(tf.abs(kernel), axis=0))
        return n, tape.gradient(n, kernel), tape.gradient(plain, kernel)

    n, grad, autodiff = run()
    sums = np.abs(k).sum(axis=0)
    j = int(np.argmax(sums))
    expected = np.zeros_like(k)
    expected[:, j] = np.sign(k[:, j])
    np.testing.assert_allclose(n.numpy(), sums[j], rtol=1e-12)
    np.testing.assert_array_equal(grad.numpy(), expected)
    np.testing.assert_array_equal(grad.numpy(), autodiff.numpy())


def test_dense_inf_norm_tie_gives_a_valid_subgradient():
    # Two maximizing columns: the first one carries the subgradient.
    k = np.array([[1.0, -1.0, 0.5], [2.0, 2.0, -0.5]])
    kernel = tf.constant(k)
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        n = bounds.affine.inf_norm(bounds.affine.dense_layer(kernel))
    grad = tape.gradient(n, kernel).numpy()
    assert float(n) == 3.0
    np.testing.assert_array_equal(grad, [[1.0, 0, 0], [1.0, 0, 0]])


def test_one_hot_labels_equal_integer_labels():
    kernels, eps = hand_network(3)
    y = np.array([2, 0, 1])
    a = bounds.margin_penalty(kernels, X_HAND, y, eps_x=0.1, eps_w=eps)
    b = bounds.margin_penalty(
        kernels, X_HAND, np.eye(3)[y], eps_x=0.1, eps_w=eps
    )
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())


def test_zero_eps_gives_zero_bounds():
    kernels, _ = hand_network(3)
    for v in VARIANTS:
        tau, zeta = bounds.pairwise_tau_zeta(
            kernels, X_HAND, eps_x=0.0, eps_w=0.0, variant=v
        )
        np.testing.assert_allclose(tau.numpy(), 0.0, atol=1e-15)
        np.testing.assert_allclose(zeta.numpy(), 0.0, atol=1e-15)


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(eps_x=-0.1, eps_w=0.1), "`eps_x` must be >= 0"),
        (dict(eps_x=0.1, eps_w=-0.1), "`eps_w` must be >= 0"),
        (dict(eps_x=0.1, eps_w=[0.1, -0.2, 0.1]), "`eps_w` must be >= 0"),
        (dict(eps_x=0.1, eps_w=[0.1, 0.1]), "one value per layer"),
        (dict(eps_x=float("nan"), eps_w=0.1), "`eps_x` must be >= 0"),
        (dict(eps_x=0.1, eps_w=0.1, variant="ibp"), "`variant` must be one"),
    ],
)
def test_bad_arguments(kwargs, match):
    kernels, _ = hand_network(3)
    with pytest.raises(ValueError, match=match):
        bounds.pairwise_tau_zeta(kernels, X_HAND, **kwargs)
    with pytest.raises(ValueError, match=match):
        bounds.margin_penalty(kernels, X_HAND, [0, 1, 2], **kwargs)


def test_kernels_that_do_not_chain():
    kernels = [np.ones((4, 3)), np.ones((2, 3))]
    with pytest.raises(ValueError, match="do not chain"):
        bounds.pairwise_tau_zeta(kernels, X_HAND, eps_x=0.1, eps_w=0.1)


def test_input_that_does_not_match_the_first_kernel():
    kernels = [np.ones((5, 3)), np.ones((3, 3))]
    with pytest.raises(ValueError, match="do not chain"):
        bounds.pairwise_tau_zeta(kernels, X_HAND, eps_x=0.1, eps_w=0.1)


def test_single_layer_and_non_list_rejected():
    with pytest.raises(ValueError, match="at least 2 layers"):
        bounds.pairwise_tau_zeta(
            [np.ones((4, 3))], X_HAND, eps_x=0.1, eps_w=0.1
        )
    with pytest.raises(ValueError, match="must be a list"):
        bounds.pairwise_tau_zeta(np.ones((4, 3)), X_HAND, eps_x=0.1, eps_w=0.1)


def test_paper_variant_rejects_biases():
    kernels, _ = hand_network(2)
    with pytest.raises(ValueError, match="bias-free dense"):
        bounds.pairwise_tau_zeta(
            kernels,
            X_HAND,
            eps_x=0.1,
            eps_w=0.1,
            variant="paper",
            biases=[np.zeros(3), None],
        )
