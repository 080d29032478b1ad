"""SNDense: a Keras ``Dense`` layer with a spectrally-normalized kernel."""

import keras
import tensorflow as tf

from layers import _sn_common
from layers import capped_matmul
from layers import spectral


@keras.saving.register_keras_serializable(package="nsr_tf")
class SNDense(_sn_common.SpectralNormMixin, keras.layers.Dense):
    """Dense layer whose kernel is rescaled to spectral norm <= beta.

    The kernel applied to the inputs is ``W / max(1, sigma_hat / beta)``,
    where ``sigma_hat`` comes from ``power_iterations`` power-iteration steps
    started at the non-trainable weight ``u`` (shape ``[1, units]``). Gradients
    flow through ``sigma_hat``; the rescaled kernel is never written back into
    ``kernel``. ``u`` is replaced by the new power-iteration vector only in
    calls with ``training=True``. The bias is not normalized. With
    ``beta=inf`` the kernel is used as is and ``u`` is still updated.

    Inside ``layers.override.kernel_override({layer: k})`` the layer applies
    ``k`` as its effective kernel and does not touch ``u``.

    The forward pass is the one of ``keras.layers.Dense`` with the effective
    kernel in place of ``kernel``: ``activation(inputs @ W_SN + bias)``. With
    a finite ``beta`` the matmul and the last power step run as
    ``layers.capped_matmul`` (the same values and the exact autodiff
    gradient, with a cheaper backward pass).

    Args:
        units: as in ``keras.layers.Dense``.
        *args: further positional ``Dense`` arguments (activation, ...).
        beta: float > 0 or ``inf``, the bound on the spectral norm.
        power_iterations: int >= 1, power-iteration steps per call.
        **kwargs: every other ``keras.layers.Dense`` argument (activation,
            use_bias, initializers, regularizers, constraints, name, dtype).
            LoRA and quantization are not supported.

    Call arguments:
        inputs: tensor of shape ``(..., input_dim)``.
        training: whether to update ``u`` (Python bool or bool tensor).

    Input shape:
        ``(batch_size, ..., input_dim)``.

    Output shape:
        ``(batch_size, ..., units)``.

    Raises:
        ValueError: if ``beta <= 0`` or NaN, or ``power_iterations < 1``.

    Example:

    >>> layer = SNDense(4, beta=1.0)
    >>> layer(np.ones((2, 3), "float32")).shape
    TensorShape([2, 4])

    Reference:
        Farnia, Zhang and Tse, "Generalizable Adversarial Training via
        Spectral Normalization", ICLR 2019, eq. 9 and App. B.
    """

    def __init__(
        self,
        units,
        *args,
        beta=float("inf"),
        power_iterations=1,
        **kwargs,
    ):
        self.beta = _sn_common.check_beta(beta)
        self.power_iterations = _sn_common.check_power_iterations(
            power_iterations
        )
        _sn_common.check_unsupported(kwargs, "SNDense")
        super().__init__(units, *args, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        self._u_shape = (1, self.units)
        self._build_u()

    def _power_iteration(self, kernel, u, iterations):
        return spectral.dense_power_iteration(kernel, u, iterations=iterations)

    def _spectral_norm_of(self, kernel, u, **kwargs):
        return spectral.dense_operator_norm(kernel, u=u, **kwargs)

    def _apply_kernel(self, inputs, kernel):
        return keras.ops.matmul(inputs, tf.cast(kernel, self.compute_dtype))

    def _capped_apply(self, inputs, kernel, u):
        return capped_matmul.capped_matmul(
            tf.cast(inputs, self.compute_dtype),
            kernel,
            u,
            self.beta,
            iterations=self.power_iterations,
        )

    def call(self, inputs, training=None):
        x = self._normalized(training, inputs)
        if self.bias is not None:
            x = keras.ops.add(x, tf.cast(self.bias.value, self.compute_dtype))
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self):
        config = super().get_config()
        return {**config, **self._sn_config()}
