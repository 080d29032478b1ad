"""Variant "paper": Theorem 2's zeta exactly as printed (not a valid bound).

* Hidden layers: eq. 22's shifted network ``W^{m*} = W^m + eps_m`` for
  ``m >= 2`` (layer 1 as Lemma 1: ``W^1 + sgn(x) eps_1``); for L = 2 the
  printed bracket's extra term ``eps_1 ||x||_1`` repeats the first one, so
  ``e`` is doubled (valid, looser).
* Last layer: the ``2 eps_L ||h^{L-1*}||_1`` term inside the braces, i.e.
  ``zeta^{ij} = D_ij (e + 2 eps_L ||h^{L-1*}||_1)``.

Defined by the paper for bias-free dense networks only. ``docs/bounds.md``
shows why it fails (the term is multiplied by ``D_ij``, and ``h*`` is not
an upper bound for ``m >= 2``).

Reference:
    Tsai et al. 2021, Theorem 2, eq. 22.
"""

import tensorflow as tf

from nsr_tf.bounds import _terms as terms
from nsr_tf.bounds import affine as aff
from nsr_tf.bounds.variants import base
from nsr_tf.bounds.variants import propagate


def eq22_kernel(kernel, eps):
    """Eq. 22's ``W^{m*} = W^m + eps_m`` (Keras layout)."""
    return kernel + eps if not terms.is_zero(eps) else kernel


def printed_hidden(problem) -> base.Hidden:
    """Eq. 22's ``h^{L-1*}`` and the printed bracket ``e`` (L = 2: doubled)."""
    shift, e1 = propagate.first_layer(problem)
    uppers = propagate.shifted_uppers(problem, shift, eq22_kernel)
    e = propagate.error_bound(problem, e1, uppers)
    if len(problem.layers) == 2:
        # Printed form for L = 2: eps_{L-1}||h^{L-2*}||_1 = eps_1||x||_1
        # repeats the first term (valid, looser).
        e = 2.0 * e
    return base.Hidden(upper=aff.flatten(uppers[-1]), error=e)


def pairwise_zeta(problem, hidden, dist):
    """``zeta[b, i, j] = D_ij (e + 2 eps_L ||h^{L-1*}||_1)``."""
    l1u = tf.reduce_sum(hidden.upper, axis=1)[:, None, None]
    inner = hidden.error[:, None, None] + 2.0 * problem.eps_w[-1] * l1u
    return dist[None] * inner


def worst_zeta(problem, hidden, y, dist_y):
    """Eq. 23's ``max_{y' != y}`` of :func:`pairwise_zeta` (a gather)."""
    del y  # the max over y' is carried by dist_y
    last_term = terms.scale(2.0 * problem.eps_w[-1], aff.row_sum(hidden.upper))
    return dist_y * terms.sum_terms(hidden.error, last_term)


VARIANT = base.Variant(
    name="paper",
    hidden=printed_hidden,
    pairwise_zeta=pairwise_zeta,
    worst_zeta=worst_zeta,
    dense_bias_free_only=True,
)
