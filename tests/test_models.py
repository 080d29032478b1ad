"""Tests for nsr_tf.models: shapes, hand-counted parameters, initializers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNConv2D
from layers import SNDense
from nsr_tf import models
from nsr_tf.models import LocalResponseNormalization

CHANNELS = {
    "alexnet": 3,
    "elu_alexnet": 3,
    "inception": 3,
    "resnet": 3,
    "mlp1": 1,
    "mlp2": 1,
    "elunet": 1,
    "nsr_mlp": 1,
}


def _conv(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def _dense(nin, nout, bias=True):
    return nin * nout + (nout if bias else 0)


def _alexnet_params(c, k=10):
    return (
        _conv(5, c, 96)
        + _conv(5, 96, 256)
        + _dense(6 * 6 * 256, 384)
        + _dense(384, 192)
        + _dense(192, k)
    )


def _inception_params(c, k=10):
    total, ch = _conv(3, c, 96), 96
    plan = [
        ("i", 32, 32), ("i", 32, 48), ("d", 80), ("i", 112, 48),
        ("i", 96, 64), ("i", 80, 80), ("i", 48, 96), ("d", 96),
        ("i", 176, 160), ("i", 176, 160),
    ]  # fmt: skip
    for step in plan:
        if step[0] == "i":
            total += _conv(1, ch, step[1]) + _conv(3, ch, step[2])
            ch = step[1] + step[2]
        else:  # conv branch + maxpool branch (channels kept)
            total += _conv(3, ch, step[1])
            ch = step[1] + ch
    assert ch == 336
    return total + _dense(7 * 7 * 336, k)


def _resnet_params(c, widths, k=10, blocks=5):
    total, cin = _conv(3, c, 16, bias=False), 16
    for w in widths:
        total += _conv(1, cin, w, bias=False)  # projection
        total += _conv(3, cin, w, bias=False) + _conv(3, w, w, bias=False)
        total += (blocks - 1) * 2 * _conv(3, w, w, bias=False)
        cin = w
    return total + _dense(cin, k)


def _trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


EXPECTED = {
    "alexnet": _alexnet_params(3),
    "elu_alexnet": _alexnet_params(3),
    "inception": _inception_params(3),
    "resnet": _resnet_params(3, (16, 32, 128)),
    "mlp1": _dense(784, 512) + _dense(512, 10),
    "mlp2": _dense(784, 512) + _dense(512, 512) + _dense(512, 10),
    "elunet": _conv(8, 1, 64) + _conv(6, 64, 128) + _conv(5, 128, 128)
    + _dense(128, 10),
    "nsr_mlp": 784 * 128 + 128 * 64 + 64 * 32 + 32 * 10,
}  # fmt: skip


def test_names_cover_the_zoo():
    assert set(models.NAMES) == set(CHANNELS)


@pytest.mark.parametrize("name", sorted(CHANNELS))
def test_builds_with_spec_param_count_and_runs_at_28x28(name, rng):
    c = CHANNELS[name]
    model = models.build(name, input_shape=(28, 28, c))
    assert model.output_shape == (None, 10)
    assert _trainable_count(model) == EXPECTED[name]
    x = rng.random((2, 28, 28, c)).astype("float32")
    y = model(x, training=False).numpy()
    assert y.shape == (2, 10) and np.all(np.isfinite(y))


def test_hand_counts_of_small_cases():
    # Spot-check the helper arithmetic itself with numbers done by hand.
    assert EXPECTED["nsr_mlp"] == 110_912
    assert EXPECTED["alexnet"] == 4_237_130
    assert _resnet_params(3, (16, 32, 128)) == 1_481_146
    assert _resnet_params(3, (16, 32, 64)) == 464_698
    # Written out layer by layer from spec §2 (weights + biases):
    # conv1 2688; incept(32,32) 3104 + 27680; incept(32,48) 2080 + 27696;
    # down(80) 57680; incept(112,48) 18032 + 69168; incept(96,64)
    # 15456 + 92224; incept(80,80) 12880 + 115280; incept(48,96)
    # 7728 + 138336; down(96) 124512; incept(176,160) 42416 + 345760 and
    # 59312 + 484000; dense 16464 * 10 + 10 = 164650.
    assert EXPECTED["inception"] == 1_810_682
    # 8*8*1*64+64, 6*6*64*128+128, 5*5*128*128+128, 128*10+10.
    assert EXPECTED["elunet"] == 4160 + 295_040 + 409_728 + 1290 == 710_218
    assert EXPECTED["mlp1"] == 401_920 + 5130 == 407_050
    assert EXPECTED["mlp2"] == 401_920 + 262_656 + 5130 == 669_706


# Activation of every SN layer, in model order (spec sn_paper.md §2).
ACTIVATIONS = {
    "alexnet": ["relu"] * 4 + ["linear"],
    "elu_alexnet": ["elu"] * 4 + ["linear"],
    "mlp1": ["elu", "linear"],
    "mlp2": ["elu", "elu", "linear"],
    "elunet": ["elu"] * 3 + ["linear"],
    "inception": ["relu"] * 19 + ["linear"],
    "nsr_mlp": ["relu"] * 3 + ["linear"],
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_follow_the_spec(name):
    c = CHANNELS[name]
    model = models.build(name, input_shape=(28, 28, c))
    sn = [la for la in model.layers if isinstance(la, (SNConv2D, SNDense))]
    assert [la.get_config()["activation"] for la in sn] == ACTIVATIONS[name]


def test_resnet_activations_are_separate_relus_before_convs():
    model = models.build("resnet", input_shape=(28, 28, 3))
    sn = [la for la in model.layers if isinstance(la, (SNConv2D, SNDense))]
    assert all(la.get_config()["activation"] == "linear" for la in sn)
    relus = [la for la in model.layers if isinstance(la, keras.layers.ReLU)]
    # relu0 and relu1 per block (15 blocks) plus the final ReLU.
    assert len(relus) == 2 * 15 + 1


def _of_type(model, cls):
    return [la for la in model.layers if isinstance(la, cls)]


def test_alexnet_pooling_and_lrn_settings():
    model = models.build("alexnet", input_shape=(28, 28, 3))
    kinds = [type(la).__name__ for la in model.layers[1:]]
    assert kinds == [
        "SNConv2D", "MaxPooling2D", "LocalResponseNormalization",
        "SNConv2D", "MaxPooling2D", "LocalResponseNormalization",
        "Flatten", "SNDense", "SNDense", "SNDense",
    ]  # fmt: skip
    for pool in _of_type(model, keras.layers.MaxPooling2D):
        assert tuple(pool.pool_size) == (3, 3)
        assert tuple(pool.strides) == (2, 2)
        assert pool.padding == "valid"
    for lrn in _of_type(model, LocalResponseNormalization):
        cfg = lrn.get_config()
        assert (cfg["depth_radius"], cfg["bias"], cfg["beta"]) == (4, 1.0, 0.75)
        assert cfg["alpha"] == pytest.approx(0.001 / 9)
    convs = _of_type(model, SNConv2D)
    assert [tuple(c.kernel_size) for c in convs] == [(5, 5), (5, 5)]
    assert all(c.padding == "same" for c in convs)


def test_inception_pooling_settings():
    model = models.build("inception", input_shape=(28, 28, 3))
    avg = model.get_layer("avgpool")
    assert (tuple(avg.pool_size), tuple(avg.strides), avg.padding) == (
        (7, 7), (1, 1), "same",
    )  # fmt: skip
    for name in ("down1_pool", "down2_pool"):
        pool = model.get_layer(name)
        assert (tuple(pool.pool_size), tuple(pool.strides), pool.padding) == (
            (3, 3), (2, 2), "same",
        )  # fmt: skip
    conv = model.get_layer("down1_conv")
    assert (tuple(conv.strides), conv.padding) == ((2, 2), "same")


def test_every_weight_layer_is_spectrally_normalized():
    model = models.build("inception", input_shape=(28, 28, 3), beta=1.6)
    weighted = [layer for layer in model.layers if layer.weights]
    assert weighted
    for layer in weighted:
        assert isinstance(layer, (SNConv2D, SNDense)), layer.name
        assert layer.beta == 1.6


@pytest.mark.parametrize("method", ["operator", "kernel"])
def test_method_reaches_every_conv(method):
    model = models.build("elunet", input_shape=(28, 28, 1), method=method)
    convs = [la for la in model.layers if isinstance(la, SNConv2D)]
    assert len(convs) == 3
    assert all(la.get_config()["method"] == method for la in convs)


def _shape(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape)


def test_spatial_sizes_follow_the_spec():
    alex = models.build("alexnet", input_shape=(28, 28, 3))
    assert _shape(alex, "pool1") == (None, 13, 13, 96)
    assert _shape(alex, "flatten") == (None, 9216)
    inc = models.build("inception", input_shape=(28, 28, 3))
    assert _shape(inc, "down1_concat") == (None, 14, 14, 160)
    assert _shape(inc, "avgpool") == (None, 7, 7, 336)
    assert _shape(inc, "flatten") == (None, 16464)
    elu = models.build("elunet", input_shape=(28, 28, 1))
    assert _shape(elu, "conv1") == (None, 14, 14, 64)
    assert _shape(elu, "conv2") == (None, 5, 5, 128)
    assert _shape(elu, "flatten") == (None, 128)


@pytest.mark.parametrize(
    "intended, widths", [(False, (16, 32, 128)), (True, (16, 32, 64))]
)
def test_resnet_widths_strides_and_padding(intended, widths):
    model = models.build(
        "resnet", input_shape=(28, 28, 3), intended_widths=intended
    )
    assert _trainable_count(model) == _resnet_params(3, widths)
    for stage, (w, size) in enumerate(zip(widths, (28, 14, 7), strict=True)):
        assert _shape(model, f"stage{stage + 1}_block5_add") == (
            None, size, size, w,
        )  # fmt: skip
    # Strided 3x3 convs pad explicitly (1, 1) and run VALID, so their SN
    # state lives in the padded input space (spec sn_paper.md §3).
    conv = model.get_layer("stage2_block1_conv1")
    assert conv.get_config()["padding"] == "valid"
    assert _shape(model, "stage2_block1_conv1_pad") == (None, 30, 30, 16)
    assert tuple(model.get_layer("stage3_block1_conv1_pad").output.shape) == (
        None, 16, 16, 32,
    )  # fmt: skip
    # 1x1 strided projections need no padding.
    with pytest.raises(ValueError):
        model.get_layer("stage2_block1_proj_pad")


def test_initializers_follow_the_spec():
    resnet = models.build("resnet", input_shape=(28, 28, 3))
    for layer in resnet.layers:
        if isinstance(layer, SNConv2D):
            cfg = layer.get_config()
            assert cfg["use_bias"] is False
            init = cfg["kernel_initializer"]
            assert init["class_name"] == "VarianceScaling"
            assert init["config"]["scale"] == 1.0
            assert init["config"]["mode"] == "fan_in"
            assert init["config"]["distribution"] == "truncated_normal"
    alex = models.build("alexnet", input_shape=(28, 28, 3))
    for layer in alex.layers + [resnet.get_layer("logits")]:
        if isinstance(layer, (SNConv2D, SNDense)):
            init = layer.get_config()["kernel_initializer"]
            assert init["class_name"] == "GlorotUniform"
            np.testing.assert_array_equal(layer.bias.numpy(), 0.0)


def test_nsr_mlp_is_bias_free_relu_784_128_64_32_10():
    model = models.build("nsr_mlp", input_shape=(28, 28, 1))
    dense = [la for la in model.layers if isinstance(la, SNDense)]
    assert [tuple(la.kernel.shape) for la in dense] == [
        (784, 128), (128, 64), (64, 32), (32, 10),
    ]  # fmt: skip
    assert all(la.bias is None for la in dense)
    assert all(la.beta == float("inf") for la in dense)
    assert [la.get_config()["activation"] for la in dense] == [
        "relu", "relu", "relu", "linear",
    ]  # fmt: skip


def _np_lrn(x, depth_radius=4, bias=1.0, alpha=0.001 / 9, beta=0.75):
    c = x.shape[-1]
    out = np.empty_like(x, dtype=np.float64)
    for i in range(c):
        lo, hi = max(0, i - depth_radius), min(c, i + depth_radius + 1)
        sq = np.sum(x[..., lo:hi].astype(np.float64) ** 2, axis=-1)
        out[..., i] = x[..., i] / (bias + alpha * sq) ** beta
    return out


@pytest.mark.parametrize("kwargs", [{}, {"depth_radius": 1, "alpha": 0.5}])
def test_lrn_matches_numpy_reference(kwargs, rng):
    x = (5.0 * rng.standard_normal((2, 3, 3, 12))).astype("float32")
    layer = LocalResponseNormalization(**kwargs)
    np.testing.assert_allclose(
        layer(x).numpy(), _np_lrn(x, **kwargs), rtol=1e-5, atol=1e-6
    )
    clone = LocalResponseNormalization.from_config(layer.get_config())
    np.testing.assert_allclose(clone(x).numpy(), layer(x).numpy(), rtol=0)


@pytest.mark.parametrize("name", ["elunet", "nsr_mlp"])
def test_keras_save_load_and_export_round_trip(name, tmp_path, rng):
    c = CHANNELS[name]
    model = models.build(name, input_shape=(28, 28, c), beta=1.5)
    x = rng.random((3, 28, 28, c)).astype("float32")
    model(x, training=True)  # move u away from its initial value
    expected = model(x, training=False).numpy()
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), expected, atol=1e-6)
    model.export(str(tmp_path / "export"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "export"))
    np.testing.assert_allclose(served.serve(x).numpy(), expected, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="vgg"), "name"),
        (dict(name="mlp1", method="fft"), "method"),
        (dict(name="mlp1", input_shape=(28, -1, 1)), "input_shape"),
        (dict(name="mlp1", input_shape="28x28"), "input_shape"),
        (dict(name="mlp1", num_classes=1), "num_classes"),
        (dict(name="mlp1", beta=0.0), "beta"),
        (dict(name="mlp1", beta=float("nan")), "beta"),
        (dict(name="resnet", blocks_per_stage=0), "blocks_per_stage"),
        (dict(name="nsr_mlp", hidden_units=(8, 0)), "hidden_units"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    kwargs.setdefault("input_shape", (28, 28, 1))
    with pytest.raises(ValueError, match=match):
        models.build(**kwargs)


def test_lrn_bad_arguments_raise():
    with pytest.raises(ValueError, match="depth_radius"):
        LocalResponseNormalization(depth_radius=-1)
