"""Conv/bias extension of the sound and interval bounds, and the Keras reader.

The NumPy reference unrolls every convolution into its explicit matrix M
(rows = output units, columns = input units, row-major (h, w, c) order) and a
support mask S (1 where a kernel tap connects the two units), and then runs
the dense recursion of docs/bounds.md on (M, S, b) with explicit loops.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNConv2D
from layers import SNDense
from layers import kernel_override
from nsr_tf import bounds


def _relu(v):
    return np.maximum(v, 0.0)


def unroll_conv(kernel, in_hw, strides, padding, dilation):
    """Explicit (M, S) of a channels-last conv on one (H, W, C) example."""
    kh, kw, cin, cout = kernel.shape
    (h, w), (sh, sw), (dh, dw) = in_hw, strides, dilation
    if padding == "same":
        oh, ow = math.ceil(h / sh), math.ceil(w / sw)
        ph = max((oh - 1) * sh + (kh - 1) * dh + 1 - h, 0) // 2
        pw = max((ow - 1) * sw + (kw - 1) * dw + 1 - w, 0) // 2
    else:
        oh = math.ceil((h - (kh - 1) * dh) / sh)
        ow = math.ceil((w - (kw - 1) * dw) / sw)
        ph = pw = 0
    mat = np.zeros((oh * ow * cout, h * w * cin))
    sup = np.zeros_like(mat)
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    r, c = i * sh + a * dh - ph, j * sw + b * dw - pw
                    if not (0 <= r < h and 0 <= c < w):
                        continue
                    for ci in range(cin):
                        for co in range(cout):
                            row = (i * ow + j) * cout + co
                            col = (r * w + c) * cin + ci
                            mat[row, col] += kernel[a, b, ci, co]
                            sup[row, col] = 1.0
    return mat, sup, (oh, ow)


def ref_bounds(mats, sups, biases, x, eps_x, eps_w, eps_b, variant):
    """Sound / interval / interval_exact tau (K, K) and zeta (K, K) for one
    example ("interval" is "sound" with the interval upper bounds)."""
    n = len(mats)
    e1, b1 = eps_w[0], eps_b[0]
    z = mats[0] @ x + biases[0]
    p = sups[0] @ np.abs(x)
    up, lo, h = _relu(z + e1 * p + b1), _relu(z - e1 * p - b1), _relu(z)
    err = e1 * p.max() + b1
    for m in range(1, n - 1):
        mat, sup, bias, e, eb = mats[m], sups[m], biases[m], eps_w[m], eps_b[m]
        norm = np.abs(mat).sum(axis=1).max()
        err = norm * err + e * (sup @ up).max() + eb
        if variant == "sound":
            up = _relu(_relu(mat + e * sup) @ up + bias + eb)
        else:
            base = mat @ lo + bias
            spread = e * (sup @ lo) + eb
            new_up = base + spread + _relu(mat + e * sup) @ (up - lo)
            new_lo = base - spread - _relu(-(mat - e * sup)) @ (up - lo)
            up, lo = _relu(new_up), _relu(new_lo)
        h = _relu(mat @ h + bias)
    last, e, eb = mats[-1], eps_w[-1], eps_b[-1]
    k = last.shape[0]
    dist = np.array(
        [[np.abs(last[i] - last[j]).sum() for j in range(k)] for i in range(k)]
    )
    prod = 1.0
    for m in range(n - 1):
        norm = np.abs(mats[m]).sum(axis=1).max()
        prod *= norm + sups[m].sum(axis=1).max() * eps_w[m]
    tau = eps_x * (dist + 2 * last.shape[1] * e) * prod
    if variant in ("sound", "interval"):
        zeta = dist * err + 2 * e * up.sum() + 2 * eb
    else:
        zeta = np.zeros((k, k))
        for i in range(k):
            for j in range(k):
                c = last[i] - last[j]
                zeta[i, j] = 2 * eb + sum(
                    max((c[r] + 2 * e) * up[r], (c[r] + 2 * e) * lo[r])
                    - c[r] * h[r]
                    for r in range(len(c))
                )
    np.fill_diagonal(tau, 0.0)
    np.fill_diagonal(zeta, 0.0)
    return tau, zeta


CONV_SPECS = [
    dict(cout=3, k=3, strides=1, padding="same", dilation=1),
    dict(cout=2, k=3, strides=2, padding="same", dilation=1),
    dict(cout=2, k=2, strides=1, padding="valid", dilation=2),
]


def conv_network(gen, with_bias):
    """6x6x2 input -> three convs -> dense 3 (float64 arrays)."""
    cin, hw = 2, (6, 6)
    layers, mats, sups, biases = [], [], [], []
    for spec in CONV_SPECS:
        kernel = np.round(
            gen.uniform(-1, 1, (spec["k"], spec["k"], cin, spec["cout"])), 1
        )
        bias = np.round(gen.uniform(-0.5, 0.5, spec["cout"]), 1)
        mat, sup, hw_out = unroll_conv(
            kernel,
            hw,
            (spec["strides"],) * 2,
            spec["padding"],
            (spec["dilation"],) * 2,
        )
        layers.append(
            bounds.conv_layer(
                kernel,
                bias if with_bias else None,
                strides=spec["strides"],
                padding=spec["padding"],
                dilation_rate=spec["dilation"],
            )
        )
        mats.append(mat)
        sups.append(sup)
        biases.append(
            np.tile(bias, hw_out[0] * hw_out[1])
            if with_bias
            else np.zeros(mat.shape[0])
        )
        cin, hw = spec["cout"], hw_out
    n_flat = hw[0] * hw[1] * cin
    dense = np.round(gen.uniform(-1, 1, (n_flat, 3)), 1)
    dense_bias = np.round(gen.uniform(-0.5, 0.5, 3), 1)
    layers.append(bounds.dense_layer(dense, dense_bias if with_bias else None))
    mats.append(dense.T)
    sups.append(np.ones_like(dense.T))
    biases.append(dense_bias if with_bias else np.zeros(3))
    return layers, mats, sups, biases


@pytest.mark.parametrize("variant", ["sound", "interval", "interval_exact"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv_bias_matches_unrolled_reference(variant, with_bias, rng):
    layers, mats, sups, biases = conv_network(rng, with_bias)
    x = np.round(rng.normal(size=(2, 6, 6, 2)), 1)
    x[0, 0, 0, 0] = 0.0
    eps_w = [0.05, 0.1, 0.02, 0.03]
    eps_b = [0.01, 0.0, 0.02, 0.05]
    tau, zeta = bounds.pairwise_tau_zeta(
        layers, x, eps_x=0.04, eps_w=eps_w, eps_b=eps_b, variant=variant
    )
    eb = eps_b if with_bias else [0.0] * 4
    for b in range(2):
        ref_tau, ref_zeta = ref_bounds(
            mats, sups, biases, x[b].ravel(), 0.04, eps_w, eb, variant
        )
        np.testing.assert_allclose(tau.numpy(), ref_tau, rtol=1e-9)
        np.testing.assert_allclose(
            zeta.numpy()[b], ref_zeta, rtol=1e-9, atol=1e-12
        )


@pytest.mark.parametrize(
    "eps_w", [[0.05, 0.05, 0.05], [0.0, 0.05, 0.0], [0.0, 0.0, 0.0]]
)
def test_dense_bias_matches_reference(eps_w, rng):
    kernels = [rng.normal(size=s) for s in [(4, 5), (5, 3), (3, 3)]]
    bias = [rng.normal(size=5), None, rng.normal(size=3)]
    x = rng.normal(size=(3, 4))
    y = np.array([0, 2, 1])
    for variant in ("sound", "interval", "interval_exact"):
        kwargs = dict(
            eps_x=0.1,
            eps_w=eps_w,
            eps_b=[0.02, 0.3, 0.04],
            biases=bias,
            variant=variant,
        )
        tau, zeta = bounds.pairwise_tau_zeta(kernels, x, **kwargs)
        pen_tau, pen_zeta = bounds.margin_penalty(kernels, x, y, **kwargs)
        mats = [k.T for k in kernels]
        sups = [np.ones_like(m) for m in mats]
        bs = [bias[0], np.zeros(3), bias[2]]
        for b in range(3):
            ref_tau, ref = ref_bounds(
                mats, sups, bs, x[b], 0.1, eps_w, [0.02, 0.0, 0.04], variant
            )
            np.testing.assert_allclose(tau.numpy(), ref_tau, rtol=1e-9)
            np.testing.assert_allclose(
                zeta.numpy()[b], ref, rtol=1e-9, atol=1e-12
            )
            others = [c for c in range(3) if c != y[b]]
            np.testing.assert_allclose(
                pen_zeta.numpy()[b], ref[others, y[b]].max(), rtol=1e-9
            )
            np.testing.assert_allclose(
                pen_tau.numpy()[b], ref_tau[others, y[b]].max(), rtol=1e-9
            )


def test_conv_interval_never_looser_than_sound(rng):
    layers, *_ = conv_network(rng, True)
    x = rng.normal(size=(3, 6, 6, 2))
    s, i, ie = (
        bounds.pairwise_tau_zeta(layers, x, eps_x=0.1, eps_w=0.1, variant=v)
        for v in ("sound", "interval", "interval_exact")
    )
    s, i, ie = (zeta.numpy() for _, zeta in (s, i, ie))
    assert np.all(i <= s * (1 + 1e-12))
    assert np.all(ie <= i * (1 + 1e-12) + 1e-12)


def test_conv_paper_variant_rejected(rng):
    layers, *_ = conv_network(rng, False)
    with pytest.raises(ValueError, match="bias-free dense"):
        bounds.pairwise_tau_zeta(
            layers,
            np.zeros((1, 6, 6, 2)),
            eps_x=0.1,
            eps_w=0.1,
            variant="lemma",
        )


def test_conv_layer_bad_arguments():
    with pytest.raises(ValueError, match="rank 4"):
        bounds.conv_layer(np.ones((3, 3, 2)))
    with pytest.raises(ValueError, match="`padding` must be"):
        bounds.conv_layer(np.ones((3, 3, 2, 2)), padding="causal")
    with pytest.raises(ValueError, match="`strides` must be"):
        bounds.conv_layer(np.ones((3, 3, 2, 2)), strides=0)
    with pytest.raises(ValueError, match="`bias` must have shape"):
        bounds.conv_layer(np.ones((3, 3, 2, 2)), np.ones(3))
    with pytest.raises(ValueError, match="do not chain"):
        bounds.pairwise_tau_zeta(
            [
                bounds.conv_layer(np.ones((3, 3, 2, 2))),
                bounds.conv_layer(np.ones((3, 3, 3, 2))),
                np.ones((8, 2)),
            ],
            np.ones((1, 2, 2, 2)),
            eps_x=0.1,
            eps_w=0.1,
        )


# ------------------------------------------------------- Keras models


def _keras_conv_model(sn):
    conv = SNConv2D if sn else keras.layers.Conv2D
    dense = SNDense if sn else keras.layers.Dense
    extra = dict(beta=0.8) if sn else {}
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            conv(3, 3, padding="same", activation="relu", **extra),
            conv(2, 3, strides=2, padding="same", **extra),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            dense(4, activation="relu", **extra),
            dense(3, **extra),
        ]
    )


@pytest.mark.parametrize("sn", [False, True])
def test_model_layers_read_effective_kernels(sn, rng):
    model = _keras_conv_model(sn)
    bounds.check_supported(model)
    got = bounds.model_layers(model)
    affines = [
        layer
        for layer in model.layers
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))
    ]
    assert [a.kind for a in got] == ["conv", "conv", "dense", "dense"]
    assert got[1].strides == (2, 2) and got[1].padding == "same"
    for spec, layer in zip(got, affines, strict=True):
        want = layer.normalized_kernel() if sn else layer.kernel
        np.testing.assert_array_equal(np.asarray(spec.kernel), np.asarray(want))
        np.testing.assert_array_equal(np.asarray(spec.bias), layer.bias.numpy())
    if sn:  # beta = 0.8 < sigma: the normalization is active.
        assert not np.allclose(
            np.asarray(got[0].kernel), affines[0].kernel.numpy()
        )
        sub = tf.zeros_like(affines[0].normalized_kernel())
        with kernel_override({affines[0]: sub}):
            np.testing.assert_array_equal(
                np.asarray(bounds.model_layers(model)[0].kernel), 0.0
            )
    x = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    logits, tau, zeta = bounds.forward_with_margin_penalty_from_model(
        model, x, [0, 2], eps_x=0.01, eps_w=0.01
    )
    np.testing.assert_allclose(logits.numpy(), model(x).numpy(), rtol=1e-5)
    t2, z2 = bounds.margin_penalty_from_model(
        model, x, [0, 2], eps_x=0.01, eps_w=0.01
    )
    np.testing.assert_allclose(zeta.numpy(), z2.numpy(), rtol=1e-6)
    t3, z3 = bounds.pairwise_tau_zeta_from_model(
        model, x, eps_x=0.01, eps_w=0.01
    )
    np.testing.assert_allclose(
        z2.numpy(),
        [z3.numpy()[0, [1, 2], 0].max(), z3.numpy()[1, :2, 2].max()],
        rtol=1e-6,
    )


def test_model_penalty_gradient_reaches_raw_kernels():
    model = _keras_conv_model(True)
    x = tf.random.normal((2, 6, 6, 2))
    with tf.GradientTape() as tape:
        tau, zeta = bounds.margin_penalty_from_model(
            model, x, [1, 0], eps_x=0.01, eps_w=0.01
        )
        loss = tf.reduce_sum(tau + zeta)
    kernels = [v for v in model.trainable_variables if "kernel" in v.path]
    grads = tape.gradient(loss, kernels)
    assert len(kernels) == 4
    assert all(g is not None and np.any(g.numpy() != 0) for g in grads)


def test_model_kernels_of_the_nsr_mlp():
    from nsr_tf.models.nsr_mlp import nsr_mlp

    model = nsr_mlp(input_shape=(28, 28, 1))
    kernels = bounds.model_kernels(model)
    assert [tuple(k.shape) for k in kernels] == [
        (784, 128),
        (128, 64),
        (64, 32),
        (32, 10),
    ]
    with pytest.raises(ValueError, match="bias-free dense"):
        bounds.model_kernels(_keras_conv_model(False))


@pytest.mark.parametrize(
    "body, match",
    [
        (
            [keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)],
            "activation 'tanh'",
        ),
        (
            [
                keras.layers.Dense(3, activation="relu"),
                keras.layers.Dense(2, activation="softmax"),
            ],
            "activation 'softmax'",
        ),
        (
            [keras.layers.Dense(3), keras.layers.Dense(2)],
            "not followed by a ReLU",
        ),
        (
            [
                keras.layers.Dense(3, activation="relu"),
                keras.layers.Dense(2),
                keras.layers.ReLU(),
            ],
            "must be linear",
        ),
        (
            [
                keras.layers.Dense(3, activation="relu"),
                keras.layers.BatchNormalization(),
                keras.layers.Dense(2),
            ],
            "BatchNormalization is not covered",
        ),
        (
            [
                keras.layers.Dense(3),
                keras.layers.LeakyReLU(),
                keras.layers.Dense(2),
            ],
            "LeakyReLU is not covered",
        ),
        ([keras.layers.Dense(2)], "at least 2"),
    ],
)
def test_check_supported_rejects(body, match):
    model = keras.Sequential([keras.Input((4,)), *body])
    with pytest.raises(ValueError, match=match):
        bounds.check_supported(model)
    with pytest.raises(ValueError, match=match):
        bounds.margin_penalty_from_model(
            model, np.ones((1, 4)), [0], eps_x=0.1, eps_w=0.1
        )


def test_check_supported_rejects_pooling_and_missing_flatten():
    pooled = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Conv2D(2, 2, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    with pytest.raises(ValueError, match="MaxPooling2D is not covered"):
        bounds.check_supported(pooled)
    unflat = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Conv2D(2, 2, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    with pytest.raises(ValueError, match="put a Flatten"):
        bounds.check_supported(unflat)
    with pytest.raises(ValueError, match="keras.Model"):
        bounds.check_supported(keras.layers.Dense(2))
