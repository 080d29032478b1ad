"""The input term tau of the NSR margin bound (Theorem 2, eq. 21).

``tau^{ij} = eps_x (D_ij + 2 d_L eps_L) prod_{m<L} (N_m + d_m eps_m)``
bounds ``f^{ij}_What(xhat) - f^{ij}_What(x)``, with ``N_m = ||W^m||_inf``,
``d_m`` the fan-in of layer m and ``D_ij = ||W^L_i - W^L_j||_1``. It is
correct as printed and shared by every variant of ``zeta`` (biases cancel
in the difference, so it holds for biased and convolutional layers too).

Reference:
    Tsai, Hsu, Yu, Chen. Non-Singular Adversarial Robustness of Neural
    Networks. ICASSP 2021. arXiv:2102.11935. Theorem 2, eq. 21.
"""

import tensorflow as tf

from nsr_tf.bounds import _terms as terms
from nsr_tf.bounds import affine as aff


def row_distances(kernel):
    """``D[i, j] = ||W^L_i - W^L_j||_1`` from an ``(n, K)`` Keras kernel."""
    return tf.reduce_sum(
        tf.abs(kernel[:, :, None] - kernel[:, None, :]), axis=0
    )


def factors(problem):
    """``P = prod_{m<L} (N_m + d_m eps_m)`` and ``2 d_L eps_L`` (eq. 21)."""
    layers, eps_w = problem.layers, problem.eps_w
    prod = None
    for layer, norm, ew in zip(
        layers[:-1], problem.norms, eps_w[:-1], strict=True
    ):
        factor = terms.add(norm, aff.fan_in(layer) * ew)
        prod = factor if prod is None else prod * factor
    return prod, 2.0 * aff.fan_in(layers[-1]) * eps_w[-1]


def pairwise(problem, dist):
    """``tau[i, j]`` of eq. 21, ``(K, K)`` (diagonal not yet zeroed).

    Args:
        problem: the call's :class:`~nsr_tf.bounds.variants.base.Problem`.
        dist: ``D`` of :func:`row_distances`.
    """
    prod, last_w = factors(problem)
    return problem.eps_x * (dist + last_w) * prod


def worst(problem, dist_y):
    """Eq. 23's ``max_{y' != y} tau^{y'y}``, ``(B,)``.

    Args:
        problem: the call's :class:`~nsr_tf.bounds.variants.base.Problem`.
        dist_y: ``max_{y'} D[y', y]`` per example (tau grows with D only).
    """
    if terms.is_zero(problem.eps_x):
        return tf.zeros_like(dist_y)
    prod, last_w = factors(problem)
    return problem.eps_x * terms.add(dist_y, last_w) * prod
