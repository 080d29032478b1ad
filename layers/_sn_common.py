"""State and forward-pass logic shared by SNDense and SNConv2D.

A mixin, not a layer: the concrete classes subclass the Keras layer first
and provide ``_power_iteration(kernel, u, iterations)``, ``_u_shape``,
``_spectral_norm_of(kernel, u, iterations)`` and
``_apply_kernel(inputs, kernel)`` (their linear operator).
"""

import math
import numbers

import keras
import numpy as np
import tensorflow as tf

from layers import override

_U_INIT_STDDEV = 1.0  # TruncatedNormal(stddev=1), ``sn.py``.


def check_beta(beta):
    """Validates ``beta`` (> 0, may be ``inf``) and returns it as a float."""
    number = isinstance(beta, (numbers.Real, np.number))
    value = float(beta) if number else float("nan")
    if isinstance(beta, bool) or math.isnan(value) or value <= 0:
        raise ValueError(
            f"`beta` must be a float > 0 (inf allowed). Received: beta={beta!r}"
        )
    return value


def check_power_iterations(power_iterations):
    """Validates ``power_iterations`` (an int >= 1) and returns it."""
    if (
        isinstance(power_iterations, bool)
        or not isinstance(power_iterations, (int, np.integer))
        or power_iterations < 1
    ):
        raise ValueError(
            "`power_iterations` must be an int >= 1. "
            f"Received: power_iterations={power_iterations}"
        )
    return int(power_iterations)


def check_unsupported(kwargs, cls_name):
    """Rejects Keras options whose kernel would bypass the normalization."""
    if kwargs.get("lora_rank"):
        raise ValueError(
            f"`{cls_name}` does not support LoRA. "
            f"Received: lora_rank={kwargs['lora_rank']}"
        )


class SpectralNormMixin:
    """Effective-kernel logic: ``W / max(1, sigma_hat / beta)``.

    The concrete layers' ``call`` is ``_normalized(training, inputs)``
    followed by the parent's usual bias and activation: one forward path.

    Reference:
        Farnia et al. 2019, eq. 9 and App. B.
    """

    def _build_u(self):
        self.u = self.add_weight(
            name="u",
            shape=self._u_shape,
            initializer=keras.initializers.TruncatedNormal(
                mean=0.0, stddev=_U_INIT_STDDEV
            ),
            trainable=False,
            dtype="float32",
            autocast=False,
            # u_new depends only on (kernel, u), which are mirrored, so every
            # replica computes the same value; keep the first replica's.
            aggregation="only_first_replica",
        )

    def add_weight(self, *args, **kwargs):
        # The kernel is never autocast: power iteration and rescaling read it
        # in its variable dtype (float32 under "mixed_float16"); ``call``
        # casts the effective kernel to the compute dtype itself.
        if kwargs.get("name") == "kernel":
            kwargs["autocast"] = False
        return super().add_weight(*args, **kwargs)

    def _raw_kernel(self):
        return tf.convert_to_tensor(self._kernel.value)

    def _normalized(self, training, inputs=None, *, honour_override=True):
        """This pass's ``op(inputs, K / d)``, or ``K / d`` without inputs.

        ``op`` is the layer's linear operator (``_apply_kernel``), ``K`` the
        raw kernel and ``d = max(1, sigma_hat / beta)``, with ``sigma_hat``
        from ``power_iterations`` steps started at the stored ``u``
        (gradients flow through it); ``u`` is replaced by the new vector
        when ``training`` is true. The kernel is applied as is (``d = 1``)
        for ``beta=inf`` (the power iteration then runs only to track sigma
        in training calls) and for a kernel substituted by
        ``layers.override.kernel_override`` (used as is, ``u`` left alone).
        With inputs and a finite beta the layer's ``_capped_apply`` computes
        ``op(inputs, K / d)`` (SNDense fuses it, see ``capped_matmul``).
        """

        def apply(kernel):
            return (
                kernel if inputs is None else self._apply_kernel(inputs, kernel)
            )

        if honour_override:
            substituted = override.get_kernel_override(self)
            if substituted is not None:
                return apply(tf.convert_to_tensor(substituted))
        kernel = self._raw_kernel()
        u = tf.convert_to_tensor(self.u.value)
        if math.isinf(self.beta):
            if _is_true(training):
                _, u_new = self._power_iteration(
                    tf.stop_gradient(kernel), u, self.power_iterations
                )
                self._update_u(u_new, training)
            return apply(kernel)
        if inputs is None:
            out, u_new = self._capped_kernel(kernel, u)
        else:
            out, u_new = self._capped_apply(inputs, kernel, u)
        if _is_true(training):
            self._update_u(u_new, training)
        return out

    def _capped_kernel(self, kernel, u):
        """``(K / d, u_new)`` from ``power_iterations`` steps at ``u``."""
        sigma, u_new = self._power_iteration(kernel, u, self.power_iterations)
        return kernel / tf.maximum(1.0, sigma / self.beta), u_new

    def _capped_apply(self, inputs, kernel, u):
        """``(op(inputs, K / d), u_new)``; layers may fuse it."""
        capped, u_new = self._capped_kernel(kernel, u)
        return self._apply_kernel(inputs, capped), u_new

    def _effective_kernel(self, training, *, honour_override=True):
        """The kernel this forward pass applies, ``K / d`` (float32).

        ``layers.effective_kernel(layer)`` is this with ``training=False``.
        """
        return self._normalized(training, honour_override=honour_override)

    def _update_u(self, u_new, training):
        u_new = tf.stop_gradient(u_new)
        if isinstance(training, bool):
            self.u.assign(u_new)
        else:  # A boolean tensor.
            self.u.assign(tf.where(tf.cast(training, tf.bool), u_new, self.u))

    def normalized_kernel(self):
        """Returns the normalized kernel ``W_SN`` of the next forward pass.

        This is ``W / max(1, sigma_hat / beta)`` with ``sigma_hat`` computed
        by ``power_iterations`` steps from the stored ``u``, exactly what a
        call with ``training=False`` (or the next training call) applies
        outside a ``kernel_override``. ``u`` is not updated. With
        ``beta=inf`` the divisor is exactly 1, so the raw kernel is returned
        without running any power iteration (gradients flow to ``kernel``
        unchanged). See also ``layers.effective_kernel``, which honours an
        active ``kernel_override``.

        Returns:
            float32 tensor shaped like ``kernel``.

        Reference:
            Farnia et al. 2019, eq. 9.
        """
        self._check_built("normalized_kernel")
        return self._effective_kernel(False, honour_override=False)

    def spectral_norm(self, iterations=None):
        """Estimates sigma of the current raw (un-normalized) operator.

        Power iteration warm-started from the stored ``u``; ``u`` is not
        updated.

        Args:
            iterations: number of steps (default
                ``layers.spectral.DEFAULT_ITERATIONS``).

        Returns:
            Python float.
        """
        self._check_built("spectral_norm")
        kwargs = {} if iterations is None else {"iterations": iterations}
        return self._spectral_norm_of(
            self._raw_kernel(), self.u.numpy(), **kwargs
        )

    def _check_built(self, what):
        if not self.built:
            raise ValueError(
                f"Call `{what}()` after the layer is built. "
                f"Received: layer {self.name!r} with built=False"
            )

    def _sn_config(self):
        return {"beta": self.beta, "power_iterations": self.power_iterations}

    def enable_lora(self, *args, **kwargs):
        raise NotImplementedError(
            f"`{type(self).__name__}` does not support LoRA."
        )

    def quantize(self, *args, **kwargs):
        raise NotImplementedError(
            f"`{type(self).__name__}` does not support quantization."
        )

    # The Keras parents save only (kernel, bias); keep u too.
    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)


def _is_true(training):
    if training is None:
        return False
    if isinstance(training, bool):
        return training
    return True  # A tensor: resolved at run time by ``_update_u``.
