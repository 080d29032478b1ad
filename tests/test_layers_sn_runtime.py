"""SN layers under MirroredStrategy (2 logical CPUs) and mixed precision."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import SNConv2D
from layers import SNDense

# Logical devices must be configured before TensorFlow initializes, so the
# distributed check runs in a fresh interpreter.
_MIRRORED_SCRIPT = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from layers import SNConv2D, SNDense, spectral

keras.utils.set_random_seed(7)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        SNConv2D(3, 3, padding="same", beta=1.0),
        keras.layers.Flatten(),
        SNDense(2, beta=0.5),
    ])
    model.compile(optimizer="sgd", loss="mse")
conv, dense = model.layers[0], model.layers[2]
u0 = conv.u.numpy().copy()
w0 = conv.kernel.numpy().copy()
x = np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype("float32")
model.fit(x, np.zeros((8, 2)), batch_size=8, epochs=1, verbose=0)
expected = spectral.conv_power_iteration(w0, u0, padding="same")[1].numpy()
out = {"replicas": strategy.num_replicas_in_sync}
for name, layer in (("conv", conv), ("dense", dense)):
    values = [v.numpy() for v in layer.u.value.values] if hasattr(
        layer.u.value, "values") else [layer.u.numpy()]
    out[name + "_copies"] = len(values)
    out[name + "_agree"] = all(np.array_equal(values[0], v) for v in values)
out["conv_max_err"] = float(np.max(np.abs(conv.u.numpy() - expected)))
out["conv_changed"] = bool(not np.array_equal(conv.u.numpy(), u0))
print("RESULT" + json.dumps(out))
"""


def test_mirrored_replicas_agree_on_u():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    out = json.loads(line[-1][len("RESULT") :])
    assert out["replicas"] == 2
    assert out["conv_copies"] == 2 and out["dense_copies"] == 2
    assert out["conv_agree"] and out["dense_agree"]
    assert out["conv_changed"]
    assert out["conv_max_err"] < 1e-5  # One power step per training step.


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_mixed_precision(kind, mixed_precision, rng):
    if kind == "dense":
        shape = (4, 6)

        def make(**kwargs):
            return SNDense(3, beta=0.5, **kwargs)

    else:
        shape = (4, 6, 5, 2)

        def make(**kwargs):
            return SNConv2D(3, 3, strides=2, padding="same", beta=0.5, **kwargs)

    x = rng.normal(size=shape).astype(np.float32)
    layer = make()
    y = layer(x, training=True)
    assert y.dtype == tf.float16
    assert layer.kernel.dtype == "float32" and layer.u.dtype == "float32"

    reference = make(dtype="float32")
    reference.build(shape)
    reference.set_weights(layer.get_weights())
    # Same float32 power iteration: bit-identical normalized kernels.
    np.testing.assert_array_equal(
        layer.normalized_kernel().numpy(), reference.normalized_kernel()
    )
    np.testing.assert_allclose(
        np.asarray(layer(x), np.float32), reference(x), rtol=1e-2, atol=1e-2
    )

    model = keras.Sequential([keras.Input(shape[1:]), make()])
    model.compile(optimizer="sgd", loss="mse")
    u0 = np.asarray(model.layers[0].u).copy()
    model.fit(x, np.zeros(model.output_shape[1:])[None].repeat(4, 0), verbose=0)
    assert not np.array_equal(np.asarray(model.layers[0].u), u0)
    assert np.all(np.isfinite(np.asarray(model.layers[0].kernel)))
