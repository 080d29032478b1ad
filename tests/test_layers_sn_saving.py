"""SN layers survive .keras save/load and SavedModel export, u included."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNConv2D
from layers import SNDense


def _model(method):
    return keras.Sequential(
        [
            keras.Input((7, 6, 2)),
            SNConv2D(3, 3, strides=2, padding="same", beta=0.5, method=method),
            keras.layers.Flatten(),
            SNDense(4, beta=0.7, activation="elu"),
            SNDense(2),
        ]
    )


def _trained(method, rng):
    model = _model(method)
    model.compile(optimizer="adam", loss="mse")
    x = rng.normal(size=(8, 7, 6, 2)).astype(np.float32)
    model.fit(x, np.zeros((8, 2)), batch_size=4, epochs=1, verbose=0)
    return model, x


def _us(layers):
    return [np.asarray(layer.u) for layer in layers if hasattr(layer, "u")]


@pytest.mark.parametrize("method", ["operator", "kernel"])
def test_keras_file_round_trip(method, rng, tmp_path):
    model, x = _trained(method, rng)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers
    ]
    for saved_u, loaded_u in zip(
        _us(model.layers), _us(loaded.layers), strict=True
    ):
        np.testing.assert_array_equal(loaded_u, saved_u)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    # Control: with another u the outputs differ, so u mattered above.
    loaded.layers[0].u.assign(np.ones(loaded.layers[0].u.shape))
    assert not np.allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_saved_model_export(rng, tmp_path):
    model, x = _trained("operator", rng)
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    reloaded = tf.saved_model.load(path)
    np.testing.assert_allclose(
        reloaded.serve(tf.constant(x)).numpy(),
        model.predict(x, verbose=0),
        atol=1e-6,
    )
    saved = sorted(np.asarray(u).tobytes() for u in _us(model.layers))
    restored = sorted(
        v.numpy().tobytes()
        for v in reloaded.variables
        if v.name.split("/")[-1].split(":")[0] == "u"
    )
    assert restored == saved


def test_importing_nsr_tf_registers_the_sn_layers(tmp_path, rng):
    """A fresh process loads a .keras file of SN layers after nsr_tf only."""
    import os
    import subprocess
    import sys

    model = keras.Sequential([keras.Input((3,)), SNDense(2, beta=0.5)])
    path = str(tmp_path / "sn.keras")
    model.save(path)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np, nsr_tf, keras\n"
        "m = keras.saving.load_model(sys.argv[1])\n"
        "assert type(m.layers[0]).__name__ == 'SNDense', m.layers\n"
        "np.save(sys.argv[3], np.asarray(m(np.load(sys.argv[2]))))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            path,
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        cwd=root,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(
        np.load(tmp_path / "y.npy"), model(x).numpy(), rtol=1e-5, atol=1e-6
    )
