"""Layer-test helpers: a copy of Keras' private ``run_layer_test`` and the
explicit conv operator matrix used as the exact SVD reference.

Checks output shape, weight counts, a ``get_config``/``from_config`` round
trip (same config, same output with the same weights) and one ``fit`` step.
"""

import keras
import numpy as np
import tensorflow as tf


def run_layer_test(
    layer_cls,
    *,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights,
    expected_num_non_trainable_weights,
):
    """Runs the layer contract; raises AssertionError on any violation."""
    layer = layer_cls(**init_kwargs)
    output = layer(input_data)
    assert tuple(output.shape) == tuple(expected_output_shape)
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert (
        len(layer.non_trainable_weights) == expected_num_non_trainable_weights
    )

    # Config round trip, through the serialization registry too.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(revived) is layer_cls
    assert revived.get_config() == config
    clone.build(input_data.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        np.asarray(clone(input_data)), np.asarray(output), rtol=0, atol=1e-6
    )

    # One fit step in a model.
    model = keras.Sequential(
        [keras.Input(input_data.shape[1:]), layer_cls(**init_kwargs)]
    )
    model.compile(optimizer="sgd", loss="mse")
    target = np.zeros((input_data.shape[0], *expected_output_shape[1:]))
    history = model.fit(
        input_data, target, batch_size=len(input_data), epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    return layer


def pair(x):
    return (x, x) if isinstance(x, int) else tuple(x)


def conv_operator_matrix(kernel, input_hwc, strides, padding, dilation):
    """The explicit matrix of x -> conv(x, kernel) (rows: basis inputs).

    Built by applying the Keras convolution (the op the layers run) to every
    standard basis vector of one input example, in float64.
    """
    n = int(np.prod(input_hwc))
    basis = np.eye(n, dtype=np.float64).reshape(n, *input_hwc)
    out = keras.ops.conv(
        tf.constant(basis),
        tf.constant(np.asarray(kernel, np.float64)),
        strides=pair(strides),
        padding=padding,
        dilation_rate=pair(dilation),
    )
    return np.asarray(out).reshape(n, -1)
