"""l2 Lipschitz-margin certificates: L against exact norms, soundness."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNConv2D
from layers import SNDense
from nsr_tf import evaluation
from nsr_tf.attacks import pgd
from nsr_tf.bounds import lipschitz
from tests.layer_contract import conv_operator_matrix


def _svd(kernel):
    return np.linalg.svd(np.asarray(kernel, np.float64), compute_uv=False)[0]


@pytest.mark.parametrize("sn", [False, True])
def test_dense_lipschitz_is_product_of_exact_svd(sn):
    dense = (lambda *a, **k: SNDense(*a, beta=1.0, **k)) if sn else (
        keras.layers.Dense
    )  # fmt: skip
    model = keras.Sequential(
        [
            keras.Input((5,)),
            dense(7, activation="relu"),
            dense(6, activation="elu"),
            dense(3),
        ]
    )
    kernels = [
        la.normalized_kernel() if sn else la.kernel for la in model.layers
    ]
    expected = np.prod([_svd(k) for k in kernels])
    np.testing.assert_allclose(
        lipschitz.lipschitz_constant(model), expected, rtol=1e-12
    )


@pytest.mark.parametrize(
    "strides,padding,dilation",
    [(2, "same", 1), (2, "valid", 1), (1, "same", 2), ((1, 2), "same", 1)],
)
def test_conv_lipschitz_matches_explicit_operator(strides, padding, dilation):
    inputs = keras.Input((6, 7, 2))
    conv = SNConv2D(
        3, 3, strides=strides, padding=padding, dilation_rate=dilation,
        beta=float("inf"),
    )  # fmt: skip
    keras.Model(inputs, conv(inputs))
    matrix = conv_operator_matrix(
        np.asarray(conv.kernel), (6, 7, 2), strides, padding, dilation
    )
    exact = np.linalg.norm(matrix, 2)
    got = lipschitz.layer_lipschitz(conv)
    assert exact * (1 - 1e-6) <= got <= exact * (1 + 2 * lipschitz.CONV_RTOL)


def _explicit(layer, shape):
    n = int(np.prod(shape))
    basis = np.eye(n).reshape(n, *shape)
    return np.asarray(layer(basis)).reshape(n, -1)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_average_pooling_operator_norm(padding):
    pool = keras.layers.AveragePooling2D(3, strides=2, padding=padding)
    inputs = keras.Input((7, 7, 2))
    keras.Model(inputs, pool(inputs))
    single = keras.layers.AveragePooling2D(
        3, strides=2, padding=padding, dtype="float64"
    )
    exact = np.linalg.norm(_explicit(single, (7, 7, 1)), 2)
    got = lipschitz.layer_lipschitz(pool)
    assert exact * (1 - 1e-6) <= got <= exact * (1 + 2 * lipschitz.CONV_RTOL)


@pytest.mark.parametrize(
    "pool,strides,expected", [(2, 2, 1.0), (3, 2, 2.0), (3, 1, 3.0)]
)
def test_max_pooling_constant_is_sound(rng, pool, strides, expected):
    layer = keras.layers.MaxPooling2D(pool, strides=strides)
    inputs = keras.Input((8, 8, 1))
    keras.Model(inputs, layer(inputs))
    got = lipschitz.layer_lipschitz(layer)
    assert got == pytest.approx(expected)
    a = rng.normal(size=(200, 8, 8, 1))
    b = a + 0.1 * rng.normal(size=a.shape)
    # A large change of an input covered by the most windows nearly
    # attains it.
    b[-1] = a[-1]
    b[-1, 2, 2, 0] += 100.0
    ratio = np.linalg.norm(
        np.asarray(layer(a) - layer(b)).reshape(200, -1), axis=1
    ) / np.linalg.norm((a - b).reshape(200, -1), axis=1)
    assert np.all(ratio <= got + 1e-9)
    if strides == 2 and pool == 3:
        assert ratio.max() == pytest.approx(got, rel=0.05)


def test_global_average_pooling():
    layer = keras.layers.GlobalAveragePooling2D()
    inputs = keras.Input((4, 5, 3))
    keras.Model(inputs, layer(inputs))
    assert lipschitz.layer_lipschitz(layer) == pytest.approx(1 / np.sqrt(20))


@pytest.mark.parametrize(
    "layer,match",
    [
        (keras.layers.BatchNormalization(), "BatchNormalization"),
        (keras.layers.Dense(4, activation="softmax"), "softmax"),
        (keras.layers.Dense(4, activation="gelu"), "gelu"),
    ],
)
def test_unsupported_layers_raise(layer, match):
    model = keras.Sequential([keras.Input((4,)), layer, keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=match):
        lipschitz.lipschitz_constant(model)


def test_branching_model_raises():
    inputs = keras.Input((4,))
    a = keras.layers.Dense(4)(inputs)
    b = keras.layers.Dense(4)(inputs)
    out = keras.layers.Dense(2)(a)
    model = keras.Model(inputs, [out, b])
    with pytest.raises(ValueError, match="single"):
        lipschitz.lipschitz_constant(model)
    model = keras.Model(inputs, keras.layers.Dense(2)(a + b))
    with pytest.raises(ValueError):
        lipschitz.lipschitz_constant(model)


@pytest.fixture(scope="module")
def small():
    """A briefly trained 16-16-3 SN ReLU net on three Gaussian clusters."""
    gen = np.random.default_rng(7)
    centers = gen.normal(size=(3, 16))
    y = gen.integers(0, 3, 200)
    x = (centers[y] + 0.5 * gen.normal(size=(200, 16))).astype("float32")
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((16,)),
            SNDense(16, activation="relu", beta=1.0),
            SNDense(3, beta=1.0),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, epochs=8, batch_size=50, verbose=0)
    return model, x, y


def test_certified_examples_never_flip(small, rng):
    model, x, y = small
    eps = 0.3
    lip = lipschitz.lipschitz_constant(model)
    correct, margin = evaluation.certify.logit_margins(model, x, y)
    cert = correct & (margin > np.sqrt(2) * lip * eps)
    assert cert.sum() >= 10, cert.sum()
    xc, yc = x[cert], y[cert]
    for _ in range(20):
        d = rng.normal(size=xc.shape)
        d *= eps / np.linalg.norm(d, axis=1, keepdims=True)
        pred = np.argmax(np.asarray(model(xc + d.astype("float32"))), -1)
        assert np.all(pred == yc)
    adv = pgd(model, xc, eps, norm=2, steps=30, step_size=eps / 10, y=yc)
    delta = np.linalg.norm(np.asarray(adv) - xc, axis=1)
    assert np.all(delta <= eps * (1 + 1e-5))
    assert np.all(np.argmax(np.asarray(model(adv)), -1) == yc)


def test_eps_list_matches_scalar_calls_and_clean(small):
    model, x, y = small
    eps = [0.0, 0.1, 0.3, 1.0]
    many = evaluation.certified_accuracy(model, x, y, eps=eps)
    one = [evaluation.certified_accuracy(model, x, y, eps=e) for e in eps]
    np.testing.assert_array_equal(many, one)
    clean = np.mean(np.argmax(np.asarray(model(x)), -1) == y)
    assert many[0] == clean
    assert np.all(np.diff(many) <= 0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(eps=0.1, norm=np.inf), "norm"),
        (dict(eps=-0.1), "eps"),
        (dict(eps=[[0.1]]), "eps"),
        (dict(eps=0.1, batch_size=0), "batch_size"),
    ],
)
def test_bad_arguments(small, kwargs, match):
    model, x, y = small
    with pytest.raises(ValueError, match=match):
        evaluation.certified_accuracy(model, x, y, **kwargs)


def test_lipschitz_uses_true_norm_not_running_sigma(small):
    """One power iteration lets the true norm run above beta; L reads the
    true norm of the effective kernel."""
    model = small[0]
    true = [_svd(la.normalized_kernel()) for la in model.layers]
    assert lipschitz.lipschitz_constant(model) == pytest.approx(
        np.prod(true), rel=1e-12
    )
    assert tf.reduce_all(tf.math.is_finite(model.layers[0].kernel))
