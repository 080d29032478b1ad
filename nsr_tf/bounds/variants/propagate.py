"""Bounds on the perturbed hidden layers, shared by the variants.

At the clean input x and for every ``|What^m - W^m| <= eps_m`` (and
``|bhat^m - b^m| <= eps_b,m``), each hidden layer ``hhat^m`` lies below an
upper bound ``u^m`` (and, for interval propagation, above ``l^m``), and
``e_m`` bounds ``||hhat^m - h^m||_inf``. Which upper bound a variant uses is
its choice; the pieces are here:

* :func:`first_layer`: ``u^1 = relu(z^1 + eps_1 ||x_R||_1 + eps_b)`` (the
  same for every variant; ``W^{1*} = W^1 + sgn(x) eps_1``) and ``e_1``;
* :func:`shifted_uppers`: ``u^m = relu(A_m(u^{m-1}; K*) + b + eps_b)`` with
  a variant's shifted kernel ``K*`` (eq. 22 or its correction);
* :func:`interval_boxes`: interval bound propagation of ``[l^m, u^m]``;
* :func:`error_bound`: ``e_m = N_m e_{m-1} + eps_m P_m(u^{m-1}) + eps_b,m``
  (Lemma 1), given the upper bounds.

Reference:
    Tsai et al. 2021, Lemma 1 and eq. 22; corrections in ``docs/bounds.md``.
"""

import tensorflow as tf

from nsr_tf.bounds import _terms as terms
from nsr_tf.bounds import affine as aff


def first_layer(problem):
    """Radius of the first pre-activation and ``e_1``.

    Returns:
        ``(shift, e1)``: ``shift = eps_1 ||x_R(o)||_1 + eps_b`` per output
        (broadcastable to ``z^1``; a Python 0.0 when both radii are 0) and
        ``e1 = eps_1 max_o ||x_R(o)||_1 + eps_b``, ``(B,)``.
    """
    first = problem.layers[0]
    ew = problem.eps_w[0]
    eb = terms.bias_radius(first, problem.eps_b[0])
    field, field_max = terms.field_l1(first, tf.abs(problem.x))
    shift = terms.sum_terms(terms.scale(ew, field), eb)
    e1 = terms.sum_terms(terms.scale(ew, field_max), eb)
    if not isinstance(e1, (tf.Tensor, tf.Variable)):  # eps_1 = 0
        e1 = terms.add(tf.zeros_like(field_max), e1)
    return shift, e1


def shifted_uppers(problem, shift, shifted_kernel) -> list:
    """``[u^1, ..., u^{L-1}]`` of a shifted network (not flattened).

    Args:
        problem: the call's :class:`~nsr_tf.bounds.variants.base.Problem`.
        shift: the first layer's radius from :func:`first_layer`.
        shifted_kernel: ``(kernel, eps) -> K*`` for layers ``m >= 2``.
    """
    u = terms.relu(terms.add(problem.first_preactivation, shift))
    uppers = [u]
    for m in range(1, len(problem.layers) - 1):
        layer = problem.layers[m]
        eb = terms.bias_radius(layer, problem.eps_b[m])
        z = aff.linear(layer, u, shifted_kernel(layer.kernel, problem.eps_w[m]))
        if layer.bias is not None:
            z = z + layer.bias
        u = terms.relu(terms.add(z, eb))
        uppers.append(u)
    return uppers


def error_bound(problem, e1, uppers):
    """``e_{L-1}`` of Lemma 1's recursion, ``(B,)``.

    Args:
        problem: the call's :class:`~nsr_tf.bounds.variants.base.Problem`.
        e1: ``e_1`` from :func:`first_layer`.
        uppers: upper bounds ``u^1 .. u^{L-1}`` (``u^{m-1}`` bounds the
            input of layer m); only ``u^1 .. u^{L-2}`` are read.
    """
    e = e1
    for m in range(1, len(problem.layers) - 1):
        layer = problem.layers[m]
        e = terms.sum_terms(
            problem.norms[m] * e,
            terms.scale(
                problem.eps_w[m], terms.field_l1(layer, uppers[m - 1])[1]
            ),
            terms.bias_radius(layer, problem.eps_b[m]),
        )
    return e


def _width_terms(layer, width, kernel, ew):
    """``width`` through ``(K + eps)^+`` and ``(eps - K)^+``."""
    plus, minus = terms.relu(kernel + ew), terms.relu(ew - kernel)
    return aff.linear(layer, width, plus), aff.linear(layer, width, minus)


def interval_boxes(problem, shift) -> list:
    """``[(l^1, u^1), ..., (l^{L-1}, u^{L-1})]`` by interval propagation.

    For ``m >= 2`` with ``hhat^{m-1}`` in ``[l, u]``, ``l >= 0``:
    ``u^m = relu(A(l) + b + eps P(l) + eps_b + A(u - l; (K + eps)^+))`` and
    ``l^m = relu(A(l) + b - eps P(l) - eps_b - A(u - l; (eps - K)^+))``
    (``docs/bounds.md``, "Interval variants"). Not flattened.

    Args:
        problem: the call's :class:`~nsr_tf.bounds.variants.base.Problem`.
        shift: the first layer's radius from :func:`first_layer`.
    """
    z1 = problem.first_preactivation
    u = terms.relu(terms.add(z1, shift))
    lo = terms.relu(z1 - shift) if not terms.is_zero(shift) else terms.relu(z1)
    boxes = [(lo, u)]
    for m in range(1, len(problem.layers) - 1):
        layer, ew = problem.layers[m], problem.eps_w[m]
        eb = terms.bias_radius(layer, problem.eps_b[m])
        base = aff.linear(layer, lo)
        if layer.bias is not None:
            base = base + layer.bias
        spread = terms.sum_terms(
            terms.scale(ew, terms.field_l1(layer, lo)[0]), eb
        )
        up, dn = _width_terms(layer, u - lo, layer.kernel, ew)
        up = terms.add(base, spread) + up
        dn = (base - spread if not terms.is_zero(spread) else base) - dn
        u, lo = terms.relu(up), terms.relu(dn)
        boxes.append((lo, u))
    return boxes
