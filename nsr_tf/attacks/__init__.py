"""Attacks on inputs, on weights, and on both (Farnia et al. 2019; Tsai et al.
2021).

Input attacks share one signature ``attack(model_fn, x, eps_or_gamma, *,
..., y=None, loss_fn=None, clip_min=None, clip_max=None) -> x_adv``; the joint
attack returns ``(x_adv, weight_deltas)``.
"""

from nsr_tf.attacks._steps import LOSSES
from nsr_tf.attacks._steps import margin_loss
from nsr_tf.attacks._steps import softmax_cross_entropy
from nsr_tf.attacks.fgm import fgm
from nsr_tf.attacks.joint import joint_pgd
from nsr_tf.attacks.pgd import pgd
from nsr_tf.attacks.universal import universal_joint_pgd
from nsr_tf.attacks.wrm import wrm

__all__ = [
    "LOSSES",
    "fgm",
    "joint_pgd",
    "margin_loss",
    "pgd",
    "softmax_cross_entropy",
    "universal_joint_pgd",
    "wrm",
]
