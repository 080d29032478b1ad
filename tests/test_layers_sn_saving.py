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
