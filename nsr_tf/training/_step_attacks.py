"""The attacks of a ``RobustModel`` step, chosen by the mode table's
``attack`` entry (``nsr_tf.training.modes``)."""

import tensorflow as tf

from layers import effective_kernel


def _fgm(fn, cfg, x, common):
    from nsr_tf import attacks

    return attacks.fgm(fn, x, cfg.eps, norm=cfg.norm, **common)


def _wrm(fn, cfg, x, common):
    from nsr_tf import attacks

    return attacks.wrm(fn, x, cfg.gamma, steps=cfg.steps, **common)


def _pgd(fn, cfg, x, common):
    from nsr_tf import attacks

    return attacks.pgd(
        fn,
        x,
        cfg.eps,
        norm=cfg.norm,
        steps=cfg.steps,
        step_size=cfg.step_size,
        rand_init=cfg.rand_init,
        **common,
    )


#: Input attack of each ``ModeSpec.attack`` value that perturbs inputs only.
INPUT_ATTACKS = {"fgm": _fgm, "wrm": _wrm, "pgd": _pgd}


def input_attack(fn, cfg, x, labels):
    """Adversarial inputs of ``cfg``'s input attack, without gradient.

    Args:
        fn: the model as a function of its inputs (``training=False``).
        cfg: a ``RobustConfig`` whose mode has an input attack.
        x: clean inputs.
        labels: integer labels the attack ascends the loss of.
    """
    common = dict(y=labels, clip_min=cfg.clip_min, clip_max=cfg.clip_max)
    x_adv = INPUT_ATTACKS[cfg.spec.attack](fn, cfg, x, common)
    return tf.stop_gradient(x_adv)


def joint_attack(model, cfg, x, labels):
    """joint_pgd's (x_adv, weight deltas) at the current weights."""
    from nsr_tf import attacks

    x_adv, deltas = attacks.joint_pgd(
        model,
        x,
        labels,
        eps_x=cfg.eps_x,
        eps_w=cfg.eps_w,
        steps=cfg.steps,
        step_size_x=cfg.step_size,
        step_size_w=cfg.step_size_w,
        clip_min=cfg.clip_min,
        clip_max=cfg.clip_max,
    )
    return tf.stop_gradient(x_adv), tf.nest.map_structure(
        tf.stop_gradient, deltas
    )


def perturbed_forward(model, x, deltas, training):
    """Forward pass at the clean weights plus ``deltas``.

    The deltas are added to the *effective* kernels (as ``joint_pgd``
    perturbs them), and gradients flow to the clean weights through
    ``layers.effective_kernel``, so ``d loss(W + delta) / dW`` is applied to
    the clean weights. SN layers do not update ``u`` inside this call.
    """
    from nsr_tf import perturb

    targets = perturb.weight_targets(model)
    values = []
    for target, delta in zip(targets, deltas, strict=True):
        if target.layer is not None:
            base = effective_kernel(target.layer)
        else:
            base = target.variable.value
        values.append(base + tf.cast(delta, base.dtype))
    return perturb.call_with_weights(
        model, x, targets, values, training=training
    )
