"""SNConv2D: a Keras ``Conv2D`` normalized on its true convolution operator."""

import keras
import tensorflow as tf

from layers import _sn_common
from layers import spectral

_METHODS = ("operator", "kernel")
_PADDINGS = ("same", "valid")


@keras.saving.register_keras_serializable(package="nsr_tf")
class SNConv2D(_sn_common.SpectralNormMixin, keras.layers.Conv2D):
    """2-D convolution whose operator is rescaled to spectral norm <= beta.

    The kernel applied to the inputs is ``W / max(1, sigma_hat / beta)``.
    With ``method="operator"`` (default) ``sigma_hat`` estimates the norm of
    the convolution itself, the linear map from one input example to its
    output with this layer's strides, padding and dilation: ``u`` is shaped
    like one input example ``[1, H, W, C_in]`` (always NHWC) and each step
    applies the convolution and its transpose. The input's spatial shape must
    therefore be known when the layer is built. With ``method="kernel"``
    (Miyato et al. 2018) the kernel is reshaped to ``[kh*kw*C_in, C_out]``
    and normalized as a dense matrix (``u`` has shape ``[1, filters]``); this
    can underestimate the operator norm (paper App. A.1).

    Gradients flow through ``sigma_hat``; the rescaled kernel is never written
    back. ``u`` changes only in calls with ``training=True``. The bias is not
    normalized. With ``beta=inf`` the kernel is used as is and ``u`` is still
    updated. Inside ``layers.override.kernel_override({layer: k})`` the layer
    applies ``k`` and does not touch ``u``.

    Args:
        filters, kernel_size: as in ``keras.layers.Conv2D``.
        *args: further positional ``Conv2D`` arguments (strides, padding...).
        beta: float > 0 or ``inf``, the bound on the spectral norm.
        power_iterations: int >= 1, power-iteration steps per call.
        method: ``"operator"`` or ``"kernel"``.
        **kwargs: every other ``keras.layers.Conv2D`` argument (strides,
            padding ``"same"``/``"valid"``, data_format, dilation_rate,
            activation, use_bias, initializers, ...). ``groups`` must be 1
            for ``method="operator"``; LoRA is not supported.

    Call arguments:
        inputs: 4-D tensor.
        training: whether to update ``u`` (Python bool or bool tensor).

    Input shape:
        ``(batch, H, W, C_in)`` (or channels_first), H and W static for
        ``method="operator"``.

    Output shape:
        as ``keras.layers.Conv2D``.

    Raises:
        ValueError: if ``beta <= 0`` or NaN, ``power_iterations < 1``, the
            method or padding is unknown, ``groups != 1`` with the operator
            method, or (at build) the spatial input shape is unknown.

    Example:

    >>> layer = SNConv2D(2, 3, beta=1.0, strides=2, padding="same")
    >>> layer(np.ones((1, 7, 6, 3), "float32")).shape
    TensorShape([1, 4, 3, 2])

    Reference:
        Farnia, Zhang and Tse, "Generalizable Adversarial Training via
        Spectral Normalization", ICLR 2019, eq. 9 and App. B;
        Miyato et al., "Spectral Normalization for GANs", ICLR 2018.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        *args,
        beta=float("inf"),
        power_iterations=1,
        method="operator",
        **kwargs,
    ):
        self.beta = _sn_common.check_beta(beta)
        self.power_iterations = _sn_common.check_power_iterations(
            power_iterations
        )
        if method not in _METHODS:
            raise ValueError(
                "`method` must be one of 'operator', 'kernel'. "
                f"Received: method={method!r}"
            )
        self.method = method
        padding = kwargs.get("padding", "valid")
        if not isinstance(padding, str) or padding.lower() not in _PADDINGS:
            raise ValueError(
                "`padding` must be one of 'same', 'valid'. "
                f"Received: padding={padding!r}"
            )
        _sn_common.check_unsupported(kwargs, "SNConv2D")
        super().__init__(filters, kernel_size, *args, **kwargs)
        if self.padding not in _PADDINGS:
            raise ValueError(
                "`padding` must be one of 'same', 'valid'. "
                f"Received: padding={self.padding!r}"
            )
        if method == "operator" and self.groups != 1:
            raise ValueError(
                "`groups` must be 1 with method='operator'. "
                f"Received: groups={self.groups}"
            )
        self._input_hwc = None

    def build(self, input_shape):
        if self.data_format == "channels_last":
            height, width, channels = input_shape[1:4]
        else:
            channels, height, width = input_shape[1:4]
        known = height is not None and width is not None
        if self.method == "operator" and not known:
            raise ValueError(
                "SNConv2D(method='operator') needs the spatial input shape "
                "at build time (u is shaped like one input example). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        super().build(input_shape)
        if known:
            self._input_hwc = (int(height), int(width), int(channels))
        if self.method == "operator":
            self._u_shape = (1, *self._input_hwc)
        else:
            self._u_shape = (1, self.filters)
        self._build_u()

    def _conv_args(self):
        return dict(
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
        )

    def _power_iteration(self, kernel, u, iterations):
        if self.method == "kernel":
            return spectral.dense_power_iteration(
                spectral.kernel_as_matrix(kernel), u, iterations=iterations
            )
        return spectral.conv_power_iteration(
            kernel, u, iterations=iterations, **self._conv_args()
        )

    def _spectral_norm_of(self, kernel, u, **kwargs):
        if self._input_hwc is None:
            raise ValueError(
                "`spectral_norm()` needs the spatial input shape, unknown "
                f"when layer {self.name!r} was built."
            )
        start = u if self.method == "operator" else None
        return spectral.conv_operator_norm(
            kernel, self._input_hwc, u=start, **self._conv_args(), **kwargs
        )

    def _apply_kernel(self, inputs, kernel):
        return self.convolution_op(inputs, tf.cast(kernel, self.compute_dtype))

    def call(self, inputs, training=None):
        outputs = self._normalized(training, inputs)
        if self.use_bias:
            if self.data_format == "channels_last":
                bias_shape = (1, 1, 1, self.filters)
            else:
                bias_shape = (1, self.filters, 1, 1)
            bias = tf.reshape(
                tf.cast(self.bias.value, self.compute_dtype), bias_shape
            )
            outputs = keras.ops.add(outputs, bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        config = super().get_config()
        return {**config, **self._sn_config(), "method": self.method}
