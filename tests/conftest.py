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


@pytest.fixture(autouse=True)
def _seed_everything():
    import keras

    keras.utils.set_random_seed(1234)
    yield
