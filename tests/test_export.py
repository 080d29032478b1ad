"""Tests of nsr_tf.export: frozen SN, plain loading, third-party attacks."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNConv2D
from layers import SNDense
from nsr_tf import export
from nsr_tf.attacks import fgm


def _sn_model(beta=0.7):
    inputs = keras.Input((6, 5, 2))
    h = SNConv2D(3, 3, strides=2, padding="same", beta=beta, name="c1")(inputs)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Flatten()(h)
    h = SNDense(8, activation="elu", beta=beta, name="d1")(h)
    outputs = SNDense(4, beta=beta, use_bias=False, name="d2")(h)
    return keras.Model(inputs, outputs)


@pytest.fixture
def exported(tmp_path, rng):
    model = _sn_model()
    x = rng.normal(size=(7, 6, 5, 2)).astype(np.float32)
    model(x, training=True)  # move u once so the state is not the initial
    u_before = [w.numpy().copy() for w in model.non_trainable_weights]
    directory = str(tmp_path / "sm")
    export.export_attack_ready(model, directory)
    return model, x, u_before, directory


def test_export_freezes_the_effective_kernels(exported):
    model, x, u_before, directory = exported
    loaded = export.load_attack_ready(directory)
    np.testing.assert_allclose(
        loaded(x).numpy(), model(x, training=False).numpy(), atol=1e-6
    )
    for before, w in zip(u_before, model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(before, w.numpy())  # export reads u
    names = sorted(v.name for v in loaded.kernels)
    assert names == ["c1/kernel:0", "d1/kernel:0", "d2/kernel:0"]
    by_name = {v.name.split("/")[0]: v for v in loaded.kernels}
    for layer_name in ("c1", "d1", "d2"):
        np.testing.assert_allclose(
            by_name[layer_name].numpy(),
            model.get_layer(layer_name).normalized_kernel().numpy(),
            atol=1e-7,
        )


def test_exported_model_loads_without_nsr_tf(exported):
    model, x, _, directory = exported
    np.save(directory + "_x.npy", x)
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({directory!r})\n"
        f"x = np.load({directory + '_x.npy'!r})\n"
        "y = m.serve(tf.constant(x))\n"
        "z = m.signatures['serve'](images=tf.constant(x))['output_0']\n"
        "assert np.array_equal(y.numpy(), z.numpy())\n"
        "assert 'layers' not in sys.modules and 'nsr_tf' not in sys.modules\n"
        f"np.save({directory + '_y.npy'!r}, y.numpy())\n"
    )
    subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True
    )
    np.testing.assert_allclose(
        np.load(directory + "_y.npy"),
        model(x, training=False).numpy(),
        atol=1e-6,
    )


@pytest.mark.parametrize("loader", ["load_attack_ready", "as_callable"])
def test_art_attacks_the_saved_model_like_our_fgm(exported, loader):
    art_estimators = pytest.importorskip("art.estimators.classification")
    art_attacks = pytest.importorskip("art.attacks.evasion")
    _, x, _, directory = exported
    if loader == "as_callable":  # a plain tf.saved_model.load, then wrapped
        loaded = export.as_callable(tf.saved_model.load(directory))
    else:
        loaded = export.load_attack_ready(directory)
    classifier = art_estimators.TensorFlowV2Classifier(
        model=loaded,
        nb_classes=4,
        input_shape=x.shape[1:],
        loss_object=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True
        ),
    )
    x_art = art_attacks.FastGradientMethod(
        classifier, norm=np.inf, eps=0.1
    ).generate(x)
    x_ours = fgm(loaded, tf.constant(x), 0.1, norm=np.inf).numpy()
    assert np.max(np.abs(x_art - x)) == pytest.approx(0.1, abs=1e-6)
    np.testing.assert_allclose(x_art, x_ours, atol=1e-6)


def test_as_callable_takes_training_and_rejects_other_objects(exported):
    model, x, _, directory = exported
    wrapped = export.as_callable(tf.saved_model.load(directory))
    np.testing.assert_allclose(
        wrapped(x, training=False).numpy(),
        model(x, training=False).numpy(),
        atol=1e-6,
    )
    assert export.as_callable(wrapped) is wrapped
    with pytest.raises(ValueError, match="`loaded` must be a loaded"):
        export.as_callable(model)


def test_plain_twin_rejects_non_functional_models():
    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="functional"):
        export.plain_twin(Sub())


def test_joint_attack_on_the_saved_model_matches_the_keras_model(exported):
    from nsr_tf.attacks import joint_pgd

    model, x, _, directory = exported
    loaded = export.load_attack_ready(directory)
    before = [v.numpy().copy() for v in loaded.variables]
    y = np.argmax(model(x, training=False).numpy(), axis=1)
    kwargs = dict(
        eps_x=0.05, eps_w=0.01, steps=5, step_size_x=0.02, step_size_w=0.004
    )
    x_saved, d_saved = joint_pgd(loaded, tf.constant(x), y, **kwargs)
    x_keras, d_keras = joint_pgd(model, tf.constant(x), y, **kwargs)
    np.testing.assert_allclose(x_saved.numpy(), x_keras.numpy(), atol=1e-5)
    assert len(d_saved) == len(d_keras) == 3
    for a, b in zip(d_saved, d_keras, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    for b, v in zip(before, loaded.variables, strict=True):
        np.testing.assert_array_equal(b, v.numpy())


def test_export_logs_no_info_lines_and_restores_verbosity(tmp_path, caplog):
    import logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        with caplog.at_level(logging.INFO):
            export.export_attack_ready(model, str(tmp_path / "m"))
        assert absl_logging.get_verbosity() == absl_logging.INFO
    finally:
        absl_logging.set_verbosity(absl_logging.WARNING)
    info = [r.getMessage() for r in caplog.records if r.levelno < 30]
    assert info == []
