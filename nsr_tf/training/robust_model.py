"""RobustModel: a functional Keras model whose ``train_step`` is robust.

One ``train_step`` serves every mode of both papers; the mode and its
budgets come from one serializable :class:`RobustConfig`. The step follows
Keras 3's own flow (``unpack_x_y_sample_weight`` -> tape -> ``compute_loss``
-> ``optimizer.apply`` -> metrics), so ``fit``, ``evaluate``, callbacks,
``.keras`` saving, ``export``, ``tf.distribute`` and mixed precision work as
for any Keras model.

SN state: each training step runs exactly one forward pass with
``training=True`` (on the clean, adversarial or jointly perturbed input), so
the power-iteration vector ``u`` of every SN layer changes exactly once per
step; the attacks, the clean-accuracy pass and ``evaluate`` call the model
with ``training=False`` and only read ``u``.
"""

import keras
import tensorflow as tf

from layers import effective_kernel
from layers import is_spectral
from layers.override import kernel_override
from nsr_tf.training import _step_attacks
from nsr_tf.training._step_utils import _batch_mean
from nsr_tf.training._step_utils import _int_labels
from nsr_tf.training._step_utils import _replica_scale
from nsr_tf.training._step_utils import _replica_unscale
from nsr_tf.training.config import RobustConfig


def _check_config(config):
    if config is None:
        return RobustConfig()
    if isinstance(config, dict):
        return RobustConfig.from_config(config)
    if not isinstance(config, RobustConfig):
        raise ValueError(
            "`config` must be a RobustConfig (or its get_config() dict). "
            f"Received: config={config!r}"
        )
    return config


@keras.saving.register_keras_serializable(package="nsr_tf")
class RobustModel(keras.Model):
    """A functional ``keras.Model`` trained robustly by ``fit``.

    Build it like any functional model, ``RobustModel(inputs, outputs,
    config=RobustConfig(mode="pgm", eps=0.46))``, or wrap an existing model
    with :func:`robustify`. ``compile`` defaults the loss to softmax
    cross-entropy on logits.

    Metrics reported by ``fit`` and ``evaluate`` (besides compiled ones):
    ``loss`` (the robust objective), ``clean_accuracy``, ``adv_accuracy``
    (under the training attack: input attack modes and ``joint_at``), and, in
    the eq. 23 modes, the batch means of ``tau`` and ``zeta``, the
    cross-entropy ``ce`` and the scaled penalty ``penalty`` it adds (so
    ``loss = ce + penalty``; see ``CollapseMonitor``). ``evaluate`` runs the
    same attack with ``training=False`` and never updates SN state.

    Args:
        *args: functional ``inputs, outputs`` (and Keras model arguments).
        config: a :class:`RobustConfig` or its ``get_config()`` dict
            (default: ``RobustConfig(mode="erm")``).
        **kwargs: Keras model arguments (``name``, ...).

    Raises:
        ValueError: bad ``config``, or a bound mode (``weight_perturb``,
            ``at_beta``, ``jiwp``) on a network ``nsr_tf.bounds`` does not
            cover.

    Reference:
        SN paper (Farnia et al., ICLR 2019) §4-5, spec sn_paper.md §4-5; NSR
        paper (Tsai et al., ICASSP 2021) eq. 23, spec nsr_paper.md §2.4-2.5.
    """

    def __init__(self, *args, config=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._robust_config = _check_config(config)
        self._check_supported()
        cfg = self._robust_config
        self.clean_accuracy_tracker = keras.metrics.Mean(name="clean_accuracy")
        if cfg.spec.attack != "none":
            self.adv_accuracy_tracker = keras.metrics.Mean(name="adv_accuracy")
        if cfg.uses_bounds:
            self.tau_tracker = keras.metrics.Mean(name="tau")
            self.zeta_tracker = keras.metrics.Mean(name="zeta")
            self.ce_tracker = keras.metrics.Mean(name="ce")
            self.penalty_tracker = keras.metrics.Mean(name="penalty")

    @property
    def robust_config(self) -> RobustConfig:
        """The :class:`RobustConfig` of this model (read-only)."""
        return self._robust_config

    def _check_supported(self):
        if self._robust_config.uses_bounds:
            from nsr_tf import bounds

            bounds.check_supported(self)

    def get_config(self):
        config = super().get_config()
        config["config"] = self._robust_config.get_config()
        return config

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        """Keras ``compile``; ``loss`` defaults to CE on logits.

        Raises:
            ValueError: a bound mode on an unsupported network.
        """
        self._check_supported()
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        """Re-compiles from ``get_compile_config()`` when a model is loaded.

        Keras skips this for models that override ``compile``; ours only adds
        a default loss, so the saved compile config is replayed as is (the
        optimizer's variables are created so its state can be restored).
        """
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # ------------------------------------------------------------------
    # Pieces of a step.

    def _clean_fn(self, x):
        return self(x, training=False)

    def _attack_labels(self, y, clean_logits):
        if self._robust_config.labels == "predicted":
            return tf.argmax(clean_logits, axis=-1)
        return _int_labels(y)

    def _input_attack(self, x, labels):
        """Adversarial inputs of the configured attack (reads SN state)."""

        with kernel_override(self._attack_kernels()):
            return self._input_attack_impl(x, labels)

    def _attack_kernels(self):
        """Effective SN kernels, computed once for a whole attack loop.

        Inside the attack every forward is ``training=False``, which reads
        ``u`` and the kernel without changing them, so each attack step
        would recompute the same effective kernel; substituting it
        once per training step gives the same values at a fraction of the
        cost. Only inside a traced step: an eagerly compiled attack would
        keep the first kernels it saw.
        """
        if not tf.inside_function():
            return {}
        return {
            layer: tf.stop_gradient(effective_kernel(layer))
            for layer in self._sn_layers
        }

    def _input_attack_impl(self, x, labels):
        return _step_attacks.input_attack(
            self._clean_fn, self._robust_config, x, labels
        )

    def _joint_attack(self, x, labels):
        """joint_pgd's (x_adv, weight deltas) at the current weights."""
        return _step_attacks.joint_attack(self, self._robust_config, x, labels)

    def _perturbed_forward(self, x, deltas, training):
        """Forward pass at the clean weights plus ``deltas`` (see
        :func:`nsr_tf.training._step_attacks.perturbed_forward`)."""
        return _step_attacks.perturbed_forward(self, x, deltas, training)

    @property
    def _sn_layers(self):
        return [
            layer
            for layer in self._flatten_layers(include_self=False)
            if is_spectral(layer)
        ]

    def _penalty_terms(self, x, labels):
        """Per-example (tau, zeta) of eq. 23 at the current kernels."""
        from nsr_tf import bounds

        cfg = self._robust_config
        tau, zeta = bounds.margin_penalty_from_model(
            self,
            x,
            labels,
            eps_x=cfg.eps_x,
            eps_w=cfg.eps_w,
            variant=cfg.variant,
        )
        return tf.cast(tau, tf.float32), tf.cast(zeta, tf.float32)

    def _forward(self, x, y, sample_weight, training):
        """The whole forward computation of one step (run under the tape).

        The attacks call the model with ``training=False``; exactly one model
        call uses ``training``: the pass the loss is taken on, except for
        ``joint_at``, whose perturbed pass substitutes every SN kernel (which
        never updates ``u``), so its clean pass carries ``training``. Ops
        recorded by the tape but off the loss's gradient path (the attack
        loops, which end in ``stop_gradient``) cost nothing at run time in a
        compiled step.

        For ``at_beta`` with the penalty at the clean input, the clean logits
        and eq. 23's tau/zeta come from one shared pass
        (``bounds.forward_with_margin_penalty_from_model``: the effective
        kernels, i.e. the ``training=False`` forward), so the penalty costs
        little more than its backward pass.

        Returns:
            dict with ``y_pred`` (logits the loss is taken on), ``clean``
            (clean logits or None), ``loss`` (replica-scaled objective),
            ``tau`` and ``zeta`` (per-example or None).
        """
        cfg = self._robust_config
        spec = cfg.spec
        labels = None if y is None else _int_labels(y)
        clean = tau = zeta = None
        if (
            cfg.uses_bounds
            and cfg.uses_input_attack
            and (cfg.penalty_input == "clean")
        ):
            clean, tau, zeta = self._shared_clean_and_penalty(x, labels)
        elif spec.attack != "none":
            clean_training = training if spec.weight_perturbation else False
            clean = self(x, training=clean_training)
        x_used = x
        if spec.attack != "none":
            attack_labels = self._attack_labels(y, tf.stop_gradient(clean))
        if spec.weight_perturbation:
            x_used, deltas = self._joint_attack(x, attack_labels)
            y_pred = self._perturbed_forward(x_used, deltas, training)
        else:
            if cfg.uses_input_attack:
                x_used = self._input_attack(x, attack_labels)
            y_pred = self(x_used, training=training)
        loss = self.compute_loss(
            x=x_used,
            y=y,
            y_pred=y_pred,
            sample_weight=sample_weight,
            training=training,
        )
        ce = loss = tf.cast(loss, tf.float32)
        penalty = None
        if cfg.uses_bounds and tau is None:
            x_pen = x_used if cfg.penalty_input == "adversarial" else x
            tau, zeta = self._penalty_terms(x_pen, labels)
        if cfg.uses_bounds:
            penalty = self._penalty(tau, zeta, sample_weight)
            loss = loss + _replica_scale(penalty)
        return {
            "y_pred": y_pred,
            "clean": clean,
            "loss": loss,
            "ce": ce,
            "penalty": penalty,
            "tau": tau,
            "zeta": zeta,
        }

    def _penalty(self, tau, zeta, sample_weight):
        """``penalty_scale * mean(α τ + β ζ)`` of eq. 23 (a scalar).

        Terms with a zero coefficient are left out, so no backward pass is
        built through them (α = 0 in at_beta); with no term the penalty is
        a constant 0.
        """
        cfg = self._robust_config
        terms = [
            coef * value
            for coef, value in ((cfg.tau_weight, tau), (cfg.zeta_weight, zeta))
            if coef > 0
        ]
        if not cfg.uses_penalty or not terms:
            return tf.constant(0.0, tf.float32)
        mean = _batch_mean(tf.add_n(terms), sample_weight)
        return tf.cast(cfg.penalty_scale, tf.float32) * mean

    def _shared_clean_and_penalty(self, x, labels):
        from nsr_tf import bounds

        cfg = self._robust_config
        clean, tau, zeta = bounds.forward_with_margin_penalty_from_model(
            self,
            x,
            labels,
            eps_x=cfg.eps_x,
            eps_w=cfg.eps_w,
            variant=cfg.variant,
        )
        return clean, tf.cast(tau, tf.float32), tf.cast(zeta, tf.float32)

    def _update_trackers(self, y, out, sample_weight):
        labels = _int_labels(y)

        def accuracy(logits):
            hit = tf.equal(tf.argmax(logits, axis=-1), labels)
            return tf.cast(hit, tf.float32)

        if out["clean"] is None:
            self.clean_accuracy_tracker.update_state(
                accuracy(out["y_pred"]), sample_weight
            )
        else:
            self.clean_accuracy_tracker.update_state(
                accuracy(out["clean"]), sample_weight
            )
            self.adv_accuracy_tracker.update_state(
                accuracy(out["y_pred"]), sample_weight
            )
        if out["tau"] is not None:
            self.tau_tracker.update_state(out["tau"], sample_weight)
            self.zeta_tracker.update_state(out["zeta"], sample_weight)
            self.ce_tracker.update_state(_replica_unscale(out["ce"]))
            self.penalty_tracker.update_state(out["penalty"])

    def _track_loss(self, loss, x):
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        self._loss_tracker.update_state(
            _replica_unscale(loss), sample_weight=batch
        )

    # ------------------------------------------------------------------
    # Keras hooks.

    def train_step(self, data):
        """One robust step; see the module docstring for the SN contract."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            out = self._forward(x, y, sample_weight, training=True)
            self._track_loss(out["loss"], x)
            scaled = self.optimizer.scale_loss(out["loss"])
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        self._update_trackers(y, out, sample_weight)
        return self.compute_metrics(
            x, y, out["y_pred"], sample_weight=sample_weight
        )

    def test_step(self, data):
        """The training objective and metrics with ``training=False``."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        out = self._forward(x, y, sample_weight, training=False)
        self._track_loss(out["loss"], x)
        self._update_trackers(y, out, sample_weight)
        return self.compute_metrics(
            x, y, out["y_pred"], sample_weight=sample_weight
        )


def robustify(model: keras.Model, config=None, *, name=None) -> RobustModel:
    """Wraps a functional or built ``Sequential`` model as a RobustModel.

    The returned model shares the layers (and so the weights and SN state)
    of ``model``; training one trains the other.

    Args:
        model: a functional ``keras.Model`` or a built ``keras.Sequential``.
        config: a :class:`RobustConfig` (or its dict); default ERM.
        name: name of the new model (default: ``model.name``).

    Returns:
        A :class:`RobustModel` from ``model.inputs`` to ``model.outputs``.

    Raises:
        ValueError: ``model`` has no symbolic inputs/outputs (a subclassed or
            unbuilt model), a bad config, or a bound mode on an unsupported
            network.
    """
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise ValueError(
            "`model` must be a functional keras.Model or a built "
            "keras.Sequential (with symbolic inputs). "
            f"Received: model={model!r}"
        )
    inputs = inputs[0] if len(inputs) == 1 else inputs
    outputs = outputs[0] if len(outputs) == 1 else outputs
    return RobustModel(
        inputs, outputs, config=_check_config(config), name=name or model.name
    )
