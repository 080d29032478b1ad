"""Variant "joint_interval": one interval bound on the whole margin change.

No tau/zeta split: tau is 0 and zeta is the joint interval bound of
:mod:`nsr_tf.bounds.joint_interval` on the increase of each wrong-class
margin under the input box and the weight (and bias) box together. It is
weighted by eq. 23's zeta coefficient (``RobustConfig.zeta_weight``).

Reference:
    ``docs/certificates.md`` (the joint interval bound and its soundness).
"""

import tensorflow as tf

from nsr_tf.bounds import joint_interval
from nsr_tf.bounds.variants import base


def _radii(problem) -> dict:
    return dict(eps_x=problem.eps_x, eps_w=problem.eps_w, eps_b=problem.eps_b)


def hidden(problem) -> base.Hidden:
    """Not used: the bound is computed in one pass by ``*_zeta``."""
    del problem
    return base.Hidden(upper=None)


def pairwise_zeta(problem, hidden, dist):
    """``(B, K, K)``: bound on the increase of ``f_i - f_j`` for each pair."""
    del hidden, dist
    lower = joint_interval.pairwise_margin_lower_bounds(
        problem.layers, problem.x, **_radii(problem)
    )
    f = joint_interval.clean_logits(problem.layers, problem.x, lower.dtype)
    # The increase of f_i - f_j is at most -lower[j, i] - (f_i - f_j).
    return -tf.transpose(lower, [0, 2, 1]) - (f[:, :, None] - f[:, None, :])


def worst_zeta(problem, hidden, y, dist_y):
    """``(B,)``: bound on the increase of the worst wrong-class margin."""
    del hidden, dist_y
    return joint_interval.margin_increase(
        problem.layers, problem.x, y, **_radii(problem)
    )


VARIANT = base.Variant(
    name="joint_interval",
    hidden=hidden,
    pairwise_zeta=pairwise_zeta,
    worst_zeta=worst_zeta,
    pairwise_tau=lambda problem, dist: tf.zeros_like(dist),
    worst_tau=lambda problem, dist_y: tf.zeros_like(dist_y),
)
