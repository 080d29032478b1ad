"""Margin bounds tau and zeta of the NSR paper (Theorem 2), and corrections.

For a ReLU network ``f_W(x) = W^L rho(... rho(W^1 x))`` and a joint
perturbation ``|xhat - x| <= eps_x``, ``|What^m - W^m| <= eps_m`` (element-wise,
absolute), the increase of every pairwise margin ``f^{ij} = f_i - f_j`` is
bounded by ``tau^{ij} + zeta^{ij}(x)`` (Tsai et al., ICASSP 2021, eq. 20):

* ``tau`` (eq. 21) bounds ``f^{ij}_What(xhat) - f^{ij}_What(x)``;
* ``zeta`` (eq. 22, Lemma 1) bounds ``f^{ij}_What(x) - f^{ij}_W(x)``.

``zeta`` as printed in Theorem 2 is not a valid bound (see ``docs/bounds.md``),
so five variants are computed:

* ``"paper"``: Theorem 2 exactly as printed: the ``2 eps_L ||h^{L-1*}||_1``
  term inside the braces (multiplied by ``||W^L_i - W^L_j||_1``), and the
  eq. 22 shifted network ``W^{m*} = W^m + eps_m`` for ``m >= 2``.
* ``"lemma"``: the Lemma 1 placement (that term outside), eq. 22's ``h*``.
* ``"sound"`` (default): the term outside and ``W^{m*} = max(W^m + eps_m, 0)``
  for ``m >= 2``, which makes ``h^{k*}`` a true upper bound of every
  perturbed hidden layer. This is the smallest change that is proven valid.
* ``"interval"``: the spec's "ibp": interval bound propagation of the
  perturbed hidden layers, whose upper bounds replace ``h^{k*}`` in the
  ``"sound"`` formula; never looser than ``"sound"`` (proof in
  ``docs/bounds.md``).
* ``"interval_exact"``: the same interval propagation, then an exact
  maximization of the last layer over the resulting box (weights and hidden
  values); never looser than ``"interval"``, and attains the true increase
  on the spec's Example A' (0.160 where ``"interval"`` gives 0.164).

All variants share ``tau`` (eq. 21, correct as printed). ``"sound"``,
``"interval"`` and ``"interval_exact"`` also cover 2-D convolutions and
biases (the bias ball is ``|bhat - b| <= eps_b``); ``"paper"`` and
``"lemma"`` are defined by the paper for bias-free dense networks only.

Each variant's maths lives in its own module of
:mod:`nsr_tf.bounds.variants`, selected by name from the table
``nsr_tf.bounds.variants.TABLE``; tau is :mod:`nsr_tf.bounds.tau`, input
checking :mod:`nsr_tf.bounds.network`. This module is the public entry.

Everything is pure TensorFlow, differentiable (sub-gradients through max, abs
and ReLU), traceable inside ``tf.function`` and works in float32 or float64.

Reference:
    Tsai, Hsu, Yu, Chen. Non-Singular Adversarial Robustness of Neural
    Networks. ICASSP 2021. arXiv:2102.11935. Theorem 2, eqs. 20-23.
"""

import dataclasses

import tensorflow as tf

from nsr_tf import checks
from nsr_tf.bounds import _terms as terms
from nsr_tf.bounds import affine as aff
from nsr_tf.bounds import network
from nsr_tf.bounds import tau as tau_lib
from nsr_tf.bounds import variants
from nsr_tf.bounds.network import as_layers  # noqa: F401  (re-export)
from nsr_tf.bounds.variants.base import Problem

#: Names of the bound variants, in the order of the variant table.
VARIANTS = tuple(variants.TABLE)


def _variant(variant):
    """The table entry of ``variant`` (the table, not a branch, decides)."""
    if not isinstance(variant, str) or variant not in variants.TABLE:
        raise ValueError(
            f"`variant` must be one of {tuple(variants.TABLE)}. "
            f"Received: variant={variant!r}"
        )
    return variants.TABLE[variant]


def _problem(
    kernels,
    x,
    eps_x,
    eps_w,
    variant,
    biases,
    eps_b,
    first_preactivation=None,
    clean_hidden=None,
):
    """The variant and the checked :class:`Problem` of one call."""
    impl = _variant(variant)
    layers = network.as_layers(kernels, biases)
    n = len(layers)
    eps_x = network.check_eps_x(eps_x)
    eps_w = network.eps_list(eps_w, n, "eps_w")
    eps_b = eps_w if eps_b is None else network.eps_list(eps_b, n, "eps_b")
    if impl.dense_bias_free_only and any(
        layer.kind != "dense" or layer.bias is not None for layer in layers
    ):
        raise ValueError(
            f"variant={variant!r} is defined by the paper for bias-free dense "
            "networks only; use variant='sound' or 'interval' for "
            "convolutions or biases."
        )
    x = tf.cast(tf.convert_to_tensor(x), layers[0].kernel.dtype)
    if first_preactivation is None:
        first_preactivation = aff.affine(layers[0], x)
    problem = Problem(
        layers=layers,
        x=x,
        eps_x=eps_x,
        eps_w=eps_w,
        eps_b=eps_b,
        first_preactivation=first_preactivation,
        clean_hidden=clean_hidden,
    )
    return impl, problem


def _labels(y, k):
    return tf.cast(checks.class_indices(y, k), tf.int32)


def _worst(impl, problem, y):
    """Eq. 23's per-example ``(max tau, max zeta)`` over ``y' != y``."""
    last = problem.layers[-1].kernel
    k = int(last.shape[-1])
    if k < 2:
        raise ValueError(
            f"The network needs at least 2 outputs. Received: {k} output(s)"
        )
    y = _labels(y, k)
    hidden = impl.hidden(problem)
    # D >= 0 with a zero diagonal, so the max over y' != y is the column max.
    dist_y = tf.gather(tf.reduce_max(tau_lib.row_distances(last), axis=0), y)
    tau = impl.worst_tau(problem, dist_y)
    return tau, impl.worst_zeta(problem, hidden, y, dist_y)


def pairwise_tau_zeta(
    kernels,
    x,
    *,
    eps_x,
    eps_w,
    variant: str = "sound",
    biases=None,
    eps_b=None,
):
    """Pairwise margin-increase bounds ``tau[i, j]`` and ``zeta[b, i, j]``.

    Entry ``[i, j]`` bounds the increase of the margin ``f_i - f_j`` under any
    joint perturbation ``|xhat - x| <= eps_x``, ``|What^m - W^m| <= eps_m``
    (and ``|bhat^m - b^m| <= eps_b[m]`` for layers with a bias):
    ``f^{ij}_What(xhat) - f^{ij}_W(x) <= tau[i, j] + zeta[b, i, j]``
    (valid for ``variant`` "sound", "interval" and "interval_exact"). The
    diagonal is 0 (a margin ``f_i - f_i`` never changes).

    Args:
        kernels: list of Keras-layout dense kernels ``(in, out)`` of a ReLU
            network whose last layer gives the logits, or
            :class:`~nsr_tf.bounds.affine.AffineLayer` items (convolutions).
        x: clean inputs ``(B, ...)``; any sign.
        eps_x: input radius (l_inf), >= 0.
        eps_w: weight radius, one number or one per layer, >= 0.
        variant: "paper", "lemma", "sound", "interval" or "interval_exact"
            (module docstring).
        biases: optional list with one bias (or None) per layer.
        eps_b: bias radius, one number or one per layer; defaults to
            ``eps_w``. Ignored for layers without a bias.

    Returns:
        ``(tau, zeta)`` of shapes ``(K, K)`` and ``(B, K, K)``.

    Raises:
        ValueError: bad variant, negative epsilon, kernels that do not chain,
            fewer than 2 layers, or "paper"/"lemma" with conv layers/biases.

    Reference:
        Tsai et al. 2021, Theorem 2: tau eq. 21, zeta eq. 22 / Lemma 1;
        corrections in ``docs/bounds.md``.
    """
    impl, problem = _problem(kernels, x, eps_x, eps_w, variant, biases, eps_b)
    hidden = impl.hidden(problem)
    dist = tau_lib.row_distances(problem.layers[-1].kernel)
    k = tf.shape(dist)[0]
    offdiag = 1.0 - tf.eye(k, dtype=dist.dtype)
    tau = impl.pairwise_tau(problem, dist) * offdiag
    zeta = impl.pairwise_zeta(problem, hidden, dist)
    return tau, zeta * offdiag


def margin_penalty(
    kernels,
    x,
    y,
    *,
    eps_x,
    eps_w,
    variant: str = "sound",
    biases=None,
    eps_b=None,
    first_preactivation=None,
):
    """Eq. 23's per-example ``max_{y' != y} tau^{y'y}`` and ``zeta^{y'y}(x)``.

    Computed cheaply: the ``K x K`` matrix of last-layer row distances once
    per batch, one extra forward pass for ``h*`` that reuses the clean
    first-layer pre-activation, and never a per-example weight copy. Because
    tau and zeta ("paper", "lemma", "sound", "interval") grow with
    ``||W^L_{y'} - W^L_y||_1`` only, the max over ``y'`` is a gather; the
    "interval_exact" variant maximizes over ``y'`` explicitly (K values
    each).

    Args:
        kernels: as in :func:`pairwise_tau_zeta`.
        x: clean inputs ``(B, ...)``.
        y: integer labels ``(B,)`` (or one-hot ``(B, K)``).
        eps_x: input radius, >= 0.
        eps_w: weight radius, one number or one per layer, >= 0.
        variant: "paper", "lemma", "sound" (default), "interval" or
            "interval_exact".
        biases: optional list of biases (one or None per layer).
        eps_b: bias radius (defaults to ``eps_w``).
        first_preactivation: optional clean ``A_1(x) + b_1`` of the first
            layer, ``(B, n_1)`` (or the conv output map), if the caller's
            forward pass already has it; saves the most expensive matmul.

    Returns:
        ``(tau, zeta)``, each of shape ``(B,)``. The regularized loss of
        eq. 23 is ``CE + alpha * tau + beta * zeta`` (averaged over B).

    Raises:
        ValueError: as :func:`pairwise_tau_zeta`, or bad labels.

    Reference:
        Tsai et al. 2021, eq. 23 (with eqs. 21-22, corrected).
    """
    impl, problem = _problem(
        kernels,
        x,
        eps_x,
        eps_w,
        variant,
        biases,
        eps_b,
        first_preactivation=first_preactivation,
    )
    return _worst(impl, problem, y)


def forward_with_margin_penalty(
    kernels,
    x,
    y,
    *,
    eps_x,
    eps_w,
    variant: str = "sound",
    biases=None,
    eps_b=None,
):
    """Logits of the network and eq. 23's penalties, sharing the forward pass.

    Args:
        kernels, x, y, eps_x, eps_w, variant, biases, eps_b: as in
            :func:`margin_penalty`.

    Returns:
        ``(logits, tau, zeta)`` with shapes ``(B, K)``, ``(B,)``, ``(B,)``.

    Raises:
        ValueError: as :func:`margin_penalty`.
    """
    impl, problem = _problem(kernels, x, eps_x, eps_w, variant, biases, eps_b)
    h = terms.relu(problem.first_preactivation)
    for layer in problem.layers[1:-1]:
        h = terms.relu(aff.affine(layer, h))
    logits = aff.affine(problem.layers[-1], h)
    problem = dataclasses.replace(problem, clean_hidden=aff.flatten(h))
    tau, zeta = _worst(impl, problem, y)
    return logits, tau, zeta


def forward(kernels, x, *, biases=None):
    """Clean logits of the ReLU network given by ``kernels`` (and biases)."""
    layers = network.as_layers(kernels, biases)
    h = tf.cast(tf.convert_to_tensor(x), layers[0].kernel.dtype)
    for layer in layers[:-1]:
        h = terms.relu(aff.affine(layer, h))
    return aff.affine(layers[-1], h)
