"""Variant "interval_exact": interval propagation, then the exact last layer.

The hidden layers are boxed by interval bound propagation as in "interval";
then the last layer is maximized exactly over the box (hidden values
``hhat_r`` in ``[l_r, u_r]``, weights ``delta_r`` in ``[-2 eps_L, 2 eps_L]``):

``zeta^{ij} = sum_r max((Delta_r + 2 eps_L) u_r, (Delta_r + 2 eps_L) l_r)
- Delta_r h_r (+ 2 eps_b,L)`` with ``Delta = W^L_i - W^L_j``.

Never looser than "interval"; attains the true increase on the spec's
Example A' (``docs/bounds.md``, "Interval variants").

Reference:
    Tsai et al. 2021, eq. 20; ``docs/bounds.md``.
"""

import tensorflow as tf

from nsr_tf.bounds import _terms as terms
from nsr_tf.bounds import affine as aff
from nsr_tf.bounds.variants import base
from nsr_tf.bounds.variants import last_layer
from nsr_tf.bounds.variants import propagate


def hidden(problem) -> base.Hidden:
    """The box ``[l^{L-1}, u^{L-1}]`` and the clean ``h^{L-1}``."""
    shift, _ = propagate.first_layer(problem)
    lo, u = propagate.interval_boxes(problem, shift)[-1]
    h = problem.clean_hidden
    if h is None:
        h = terms.relu(problem.first_preactivation)
        for layer in problem.layers[1:-1]:
            h = terms.relu(aff.affine(layer, h))
        h = aff.flatten(h)
    return base.Hidden(upper=aff.flatten(u), lower=aff.flatten(lo), clean=h)


def pairwise_zeta(problem, hidden, dist):
    """The exact maximum for every pair, ``(B, K, K)``."""
    del dist  # the exact form reads the last kernel itself
    cols = tf.transpose(problem.layers[-1].kernel)
    delta = cols[:, None, :] - cols[None, :, :]
    t = delta + 2.0 * problem.eps_w[-1]
    return (
        tf.einsum("ijr,br->bij", terms.relu(t), hidden.upper)
        - tf.einsum("ijr,br->bij", terms.relu(-t), hidden.lower)
        - tf.einsum("ijr,br->bij", delta, hidden.clean)
        + last_layer.bias_term(problem)
    )


def worst_zeta(problem, hidden, y, dist_y):
    """Eq. 23's ``max_{y' != y}``, maximized over the K candidates.

    ``sum_r relu(t) u - relu(-t) l - delta h`` with ``t = delta + 2 eps_L``
    equals ``(u - h) . delta + 2 eps_L ||u||_1 + sum_r relu(-t) (u - l)``,
    and ``(u - h) . delta = ((u - h) K^L)[y'] - ((u - h) K^L)[y]``.
    """
    del dist_y  # the bound does not grow with D alone
    last = problem.layers[-1].kernel
    k = int(last.shape[-1])
    u, lo, h = hidden.upper, hidden.lower, hidden.clean
    ew = problem.eps_w[-1]
    g = tf.matmul(u - h, last)
    g = g - tf.gather(g, y[:, None], batch_dims=1)
    cols = tf.transpose(last)
    t = terms.add(cols[None, :, :] - tf.gather(cols, y)[:, None, :], 2.0 * ew)
    per_class = terms.sum_terms(
        g,
        terms.scale(2.0 * ew, aff.row_sum(u)[:, None]),
        tf.reduce_sum(terms.relu(-t) * (u - lo)[:, None, :], axis=2),
    )
    not_y = tf.not_equal(tf.range(k)[None, :], y[:, None])
    per_class = tf.where(not_y, per_class, tf.cast(last.dtype.min, last.dtype))
    return terms.add(
        tf.reduce_max(per_class, axis=1), last_layer.bias_term(problem)
    )


VARIANT = base.Variant(
    name="interval_exact",
    hidden=hidden,
    pairwise_zeta=pairwise_zeta,
    worst_zeta=worst_zeta,
)
