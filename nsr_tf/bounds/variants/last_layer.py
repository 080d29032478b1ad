"""The corrected last-layer step of zeta (Lemma 1's placement).

``f^{ij}_What(x) - f^{ij}_W(x) = (W_i - W_j)(hhat - h) + (delta_i -
delta_j) hhat <= D_ij e_{L-1} + 2 eps_L ||u^{L-1}||_1 (+ 2 eps_b,L)``, valid
for any ``e_{L-1}`` and ``u^{L-1} >= hhat^{L-1} >= 0`` that are true bounds.
The variants "lemma", "sound" and "interval" end with it.

Reference:
    Tsai et al. 2021, Lemma 1 (eqs. 33-37); ``docs/bounds.md``.
"""

import tensorflow as tf

from nsr_tf.bounds import _terms as terms
from nsr_tf.bounds import affine as aff


def bias_term(problem):
    """``2 eps_b,L`` when the last layer has a bias, else 0."""
    if problem.layers[-1].bias is None:
        return 0.0
    return 2.0 * problem.eps_b[-1]


def pairwise_zeta(problem, hidden, dist):
    """``zeta[b, i, j] = D_ij e + 2 eps_L ||u||_1 + 2 eps_b,L``."""
    l1u = tf.reduce_sum(hidden.upper, axis=1)[:, None, None]
    zeta = dist[None] * hidden.error[:, None, None]
    zeta = zeta + 2.0 * problem.eps_w[-1] * l1u
    return zeta + bias_term(problem)


def worst_zeta(problem, hidden, y, dist_y):
    """Eq. 23's ``max_{y' != y}`` of :func:`pairwise_zeta`, ``(B,)``.

    The bound grows with ``D[y', y]`` only, so the max is at ``dist_y``.
    """
    del y  # the max over y' is carried by dist_y
    last_term = terms.scale(2.0 * problem.eps_w[-1], aff.row_sum(hidden.upper))
    zeta = terms.sum_terms(dist_y * hidden.error, last_term)
    return terms.add(zeta, bias_term(problem))
