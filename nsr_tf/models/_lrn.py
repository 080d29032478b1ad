"""Local response normalization as a small serializable Keras layer."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="nsr_tf")
class LocalResponseNormalization(keras.layers.Layer):
    """TensorFlow's local response normalization over the channel axis.

    Computes ``x / (bias + alpha * sum_{|c'-c| <= depth_radius} x_c'^2)^beta``
    with TensorFlow semantics (``alpha`` is *not* divided by the window
    size). The defaults are the mini-AlexNet's settings.

    Args:
        depth_radius: half-width of the channel window.
        bias: additive constant (k).
        alpha: scale of the squared sum.
        beta: exponent.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Raises:
        ValueError: if ``depth_radius < 0`` or ``beta < 0``.

    Reference:
        Farnia, Zhang and Tse, ICLR 2019, code ``models/alexnet.py``
        (``tf.nn.lrn(depth_radius=4, bias=1.0, alpha=0.001/9, beta=0.75)``);
        spec sn_paper.md §2 and §13.
    """

    def __init__(
        self,
        depth_radius=4,
        bias=1.0,
        alpha=0.001 / 9.0,
        beta=0.75,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(depth_radius) != depth_radius or depth_radius < 0:
            raise ValueError(
                "`depth_radius` must be an integer >= 0. "
                f"Received: depth_radius={depth_radius}"
            )
        if not beta >= 0:
            raise ValueError(f"`beta` must be >= 0. Received: beta={beta}")
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        return tf.nn.local_response_normalization(
            inputs,
            depth_radius=self.depth_radius,
            bias=self.bias,
            alpha=self.alpha,
            beta=self.beta,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base = super().get_config()
        return {
            **base,
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }
