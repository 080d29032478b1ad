"""Capacity norms Phi (SN paper Theorems 1-4), margins and norm gain."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNConv2D
from layers import SNDense
from nsr_tf import bounds
from nsr_tf.sweep import figure_data

S = [2.0, 0.5, 3.0]
F = [4.0, 1.0, 6.0]
# Hand computation: prod sigma = 3; sum F^2/sigma^2 = 4 + 4 + 4 = 12;
# prefix products 2, 1, 3 -> sum 6; lip = 3 * 6 = 18.


def test_lipschitz_and_phi_erm_by_hand():
    assert bounds.lipschitz_gradient_bound(S) == pytest.approx(18.0)
    assert bounds.phi_erm(S, F) == pytest.approx(9.0 * 12.0)


def test_phi_fgm_by_hand():
    got = bounds.phi_fgm(S, F, eps=0.1, kappa=0.5)
    assert got == pytest.approx((3.0 * (1 + 0.2 * 18.0)) ** 2 * 12.0)
    assert bounds.phi_fgm(S, F, eps=0.0, kappa=1.0) == pytest.approx(
        bounds.phi_erm(S, F)
    )


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_phi_pgm_by_hand(steps):
    alpha, kappa = 0.01, 2.0
    q = 2 * alpha / kappa * 18.0
    geometric = sum(q**t for t in range(steps))
    want = (3.0 * (1 + alpha / kappa * geometric * 18.0)) ** 2 * 12.0
    got = bounds.phi_pgm(S, F, kappa=kappa, steps=steps, step_size=alpha)
    assert got == pytest.approx(want, rel=1e-12)
    if steps == 1:  # one step of size alpha = FGM with eps = alpha
        assert got == pytest.approx(
            bounds.phi_fgm(S, F, eps=alpha, kappa=kappa)
        )


def test_phi_pgm_at_q_equal_one():
    # q = 2 alpha lip / kappa = 1: the geometric factor is r.
    alpha = 1.0 / 36.0
    got = bounds.phi_pgm(S, F, kappa=1.0, steps=4, step_size=alpha)
    want = (3.0 * (1 + alpha * 4 * 18.0)) ** 2 * 12.0
    assert got == pytest.approx(want)


def test_phi_wrm_by_hand_and_vacuous():
    got = bounds.phi_wrm(S, F, lam=20.0)
    assert got == pytest.approx((3.0 * (1 + 18.0 / 2.0)) ** 2 * 12.0)
    assert bounds.phi_wrm(S, F, lam=18.0) == math.inf


def test_fig3_normalizer():
    erm = figure_data.fig3_normalizer(S, F)
    assert erm == pytest.approx(math.sqrt(bounds.phi_erm(S, F)))
    adv = figure_data.fig3_normalizer(S, F, adversarial=True)
    # 1 + (1 + 2 + 2*0.5) = 5
    assert adv == pytest.approx(5.0 * erm)
    c = figure_data.fig3_normalizer(S, F, factors=[4.0, 1.0, 1.0])
    assert c == pytest.approx(3.0 * math.sqrt(16 + 4 + 4))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: bounds.phi_erm([1.0, 0.0], [1.0, 1.0]), "spectral_norms"),
        (lambda: bounds.phi_erm([1.0], [1.0, 1.0]), "one entry per"),
        (lambda: bounds.phi_fgm(S, F, eps=-1.0, kappa=1.0), "`eps` must"),
        (lambda: bounds.phi_fgm(S, F, eps=1.0, kappa=0.0), "`kappa` must"),
        (
            lambda: bounds.phi_pgm(S, F, kappa=1.0, steps=0, step_size=0.1),
            "`steps` must",
        ),
        (
            lambda: bounds.phi_pgm(S, F, kappa=1.0, steps=2, step_size=-1),
            "`step_size` must",
        ),
        (lambda: bounds.phi_wrm(S, F, lam=0.0), "`lam` must"),
        (lambda: bounds.capacity_norm(None), "keras.Model"),
        (
            lambda: figure_data.normalized_margins([[1.0, 0.0]], [0], 0.0),
            "`phi`",
        ),
        (lambda: figure_data.margins([1.0, 2.0], [0]), "`logits` must"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_margins_and_normalized_margins():
    logits = np.array([[3.0, 1.0, 2.5], [0.0, 2.0, -1.0]])
    np.testing.assert_allclose(
        figure_data.margins(logits, [0, 0]).numpy(), [0.5, -2.0]
    )
    np.testing.assert_allclose(
        figure_data.margins(logits, np.eye(3)[[2, 1]]).numpy(), [-0.5, 2.0]
    )
    np.testing.assert_allclose(
        figure_data.normalized_margins(logits, [0, 1], 4.0).numpy(), [0.25, 1.0]
    )


def test_norm_gain():
    x = np.array([[3.0, 4.0], [1.0, 0.0]])
    logits = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    np.testing.assert_allclose(
        figure_data.norm_gain(logits, x).numpy(), [0.2, 2.0]
    )


def _explicit_conv_sigma(kernel, shape, strides, padding):
    """Largest singular value of the explicit conv matrix (basis images)."""
    n = int(np.prod(shape))
    basis = np.eye(n).reshape((n, *shape))
    out = tf.nn.conv2d(
        basis, kernel.astype(np.float64), strides, padding.upper()
    )
    mat = out.numpy().reshape(n, -1)
    return np.linalg.svd(mat, compute_uv=False)[0]


def test_layer_norms_are_exact(rng):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(3, 3, strides=2, padding="same"),
            keras.layers.MaxPooling2D(),  # ignored: no weights
            SNConv2D(2, 2, padding="valid", beta=0.5),
            keras.layers.Flatten(),
            SNDense(4, beta=0.7),
            keras.layers.Dense(3),
        ]
    )
    sig, frob = bounds.layer_norms(model, iterations=500)
    assert sig.shape == (4,)
    c0 = model.layers[0].kernel.numpy()
    assert sig[0] == pytest.approx(
        _explicit_conv_sigma(c0, (8, 8, 2), 2, "same"), rel=1e-4
    )
    c1 = model.layers[2].normalized_kernel().numpy()
    assert sig[1] == pytest.approx(
        _explicit_conv_sigma(c1, (2, 2, 3), 1, "valid"), rel=1e-4
    )
    d0 = model.layers[4].normalized_kernel().numpy()
    assert sig[2] == pytest.approx(np.linalg.svd(d0)[1][0], rel=1e-6)
    assert sig[2] <= 0.7 + 1e-3  # SN with beta = 0.7 caps it
    d1 = model.layers[5].kernel.numpy()
    assert sig[3] == pytest.approx(np.linalg.svd(d1)[1][0], rel=1e-6)
    np.testing.assert_allclose(
        frob, [np.linalg.norm(k) for k in (c0, c1, d0, d1)], rtol=1e-6
    )
    phi = bounds.capacity_norm(model, "fgm", eps=0.1, kappa=1.0)
    assert phi == pytest.approx(
        bounds.phi_fgm(sig, frob, eps=0.1, kappa=1.0), rel=1e-4
    )
    assert bounds.capacity_norm(model) == pytest.approx(
        bounds.phi_erm(sig, frob), rel=1e-4
    )
    with pytest.raises(ValueError, match="`attack` must"):
        bounds.capacity_norm(model, "cw")
    # Fig. 3 factors: H*W*C_in/4 of each conv input (8x8x2; 2x2x3 after the
    # pooling), 1 for dense layers; the normalizer P*sqrt(sum c F^2/s^2).
    factors = figure_data.fig3_factors(model)
    np.testing.assert_array_equal(factors, [32.0, 3.0, 1.0, 1.0])
    norm = figure_data.fig3_normalizer(sig, frob, factors=factors)
    want = np.prod(sig) * math.sqrt(
        sum(c * f**2 / s**2 for c, f, s in zip(factors, frob, sig, strict=True))
    )
    assert norm == pytest.approx(want, rel=1e-12)
