"""Shared test set-up: quiet TensorFlow, deterministic seeds, exact float32."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Higher numerical accuracy for correctness tests on GPUs (as Keras does).
tf.config.experimental.enable_tensor_float_32_execution(False)


@pytest.fixture
def rng():
    """A fresh seeded NumPy generator per test."""
    return np.random.default_rng(42)


@pytest.fixture
def gaussian_clusters(rng):
    """Factory ``make(n, num_classes, shape)``: labelled points around
    ``num_classes`` random centres in 16 dimensions (both signs), noise 0.5,
    reshaped to ``(n, *shape)``; float32 inputs, int64 labels."""

    def make(n, num_classes, shape):
        centers = rng.normal(size=(num_classes, 16))
        y = rng.integers(0, num_classes, n)
        x = centers[y] + 0.5 * rng.normal(size=(n, 16))
        return x.reshape((n, *shape)).astype("float32"), y.astype("int64")

    return make


@pytest.fixture(autouse=True)
def _seed_everything():
    import keras

    keras.utils.set_random_seed(1234)
    yield
