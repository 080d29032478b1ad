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

Everything is pure TensorFlow, differentiable (sub-gradients through max, abs
and ReLU), traceable inside ``tf.function`` and works in float32 or float64.

Reference:
    Tsai, Hsu, Yu, Chen. Non-Singular Adversarial Robustness of Neural
    Networks. ICASSP 2021. arXiv:2102.11935. Theorem 2, eqs. 20-23.
"""

import numbers
from typing import Sequence

import tensorflow as tf

from nsr_tf.bounds import affine as aff
from nsr_tf.bounds import joint_interval

VARIANTS = (
    "paper",
    "lemma",
    "sound",
    "interval",
    "interval_exact",
    "joint_interval",
)


def _joint_interval(layers, x, y, eps_x, eps_w, eps_b, logits=None):
    """Variant ``"joint_interval"`` (``nsr_tf.bounds.joint_interval``).

    No tau/zeta split: tau is 0 and zeta is the joint bound on the increase
    of the margins (pairwise ``(B, K, K)`` when ``y`` is None, else the
    per-example max over wrong classes).
    """
    kw = dict(eps_x=eps_x, eps_w=eps_w, eps_b=eps_b)
    if y is not None:
        zeta = joint_interval.margin_increase(layers, x, y, logits=logits, **kw)
        return tf.zeros_like(zeta), zeta
    lower = joint_interval.pairwise_margin_lower_bounds(layers, x, **kw)
    f = forward(layers, x)
    k = int(lower.shape[-1])
    # increase of f_i - f_j <= -lower[j, i] - (f_i - f_j)
    zeta = -tf.transpose(lower, [0, 2, 1]) - (f[:, :, None] - f[:, None, :])
    zeta = zeta * (1.0 - tf.eye(k, dtype=zeta.dtype))
    return tf.zeros((k, k), zeta.dtype), zeta


# ----------------------------------------------------------------- checks


def _check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(
            f"`variant` must be one of {VARIANTS}. "
            f"Received: variant={variant!r}"
        )


def _eps_list(eps, n, name):
    """One epsilon per layer; numbers are checked to be finite and >= 0."""
    if isinstance(eps, (tf.Tensor, tf.Variable)) and eps.shape.rank == 0:
        return [eps] * n
    if isinstance(eps, numbers.Real):
        values = [eps] * n
    else:
        try:
            values = list(eps)
        except TypeError:
            raise ValueError(
                f"`{name}` must be a number or one number per layer. "
                f"Received: {name}={eps!r}"
            ) from None
        if len(values) != n:
            raise ValueError(
                f"`{name}` must hold one value per layer ({n}). "
                f"Received: {name}={eps!r}"
            )
    for v in values:
        if isinstance(v, numbers.Real) and not 0 <= float(v) < float("inf"):
            raise ValueError(
                f"`{name}` must be >= 0 and finite. Received: {name}={eps!r}"
            )
    return [float(v) if isinstance(v, numbers.Real) else v for v in values]


def _check_eps_x(eps_x):
    if isinstance(eps_x, numbers.Real) and not 0 <= float(eps_x) < float("inf"):
        raise ValueError(
            f"`eps_x` must be >= 0 and finite. Received: eps_x={eps_x!r}"
        )
    return float(eps_x) if isinstance(eps_x, numbers.Real) else eps_x


def _dtype_of(kernel):
    dtype = getattr(kernel, "dtype", None)
    dtype = tf.as_dtype(dtype) if dtype is not None else tf.float32
    return dtype if dtype.is_floating else tf.float32


def as_layers(kernels, biases=None) -> list:
    """Normalizes kernels (and biases) to a list of :class:`AffineLayer`.

    Args:
        kernels: sequence whose items are Keras-layout dense kernels
            ``(in, out)`` (tensors, variables or arrays) or
            :class:`~nsr_tf.bounds.affine.AffineLayer` objects (for
            convolutions, see :func:`~nsr_tf.bounds.conv.conv_layer`).
        biases: None, or one bias (or None) per item of ``kernels``.

    Returns:
        List of ``AffineLayer`` with tensor kernels of one floating dtype.

    Raises:
        ValueError: for fewer than 2 layers, a non-dense last layer, a rank-4
            raw kernel, or kernels whose shapes do not chain.
    """
    if isinstance(kernels, (tf.Tensor, tf.Variable)) or not isinstance(
        kernels, Sequence
    ):
        raise ValueError(
            "`kernels` must be a list of layer kernels. "
            f"Received: kernels of type {type(kernels).__name__}"
        )
    if len(kernels) < 2:
        raise ValueError(
            "`kernels` must hold at least 2 layers (Theorem 2 needs L >= 2). "
            f"Received: {len(kernels)} layer(s)"
        )
    if biases is not None and len(biases) != len(kernels):
        raise ValueError(
            "`biases` must hold one entry (or None) per kernel. "
            f"Received: {len(biases)} biases for {len(kernels)} kernels"
        )
    first = kernels[0]
    dtype = _dtype_of(
        first.kernel if isinstance(first, aff.AffineLayer) else first
    )
    layers = []
    for i, k in enumerate(kernels):
        bias = None if biases is None else biases[i]
        if isinstance(k, aff.AffineLayer):
            layer = k
            if bias is not None:
                layer = aff.AffineLayer(
                    layer.kind,
                    layer.kernel,
                    bias,
                    layer.strides,
                    layer.padding,
                    layer.dilation_rate,
                )
        else:
            if len(k.shape) != 2:
                raise ValueError(
                    "Raw kernels must be rank-2 dense kernels (in, out); wrap "
                    "convolution kernels with `conv_layer`. "
                    f"Received: kernels[{i}].shape={tuple(k.shape)}"
                )
            layer = aff.dense_layer(k, bias)
        kernel = tf.cast(tf.convert_to_tensor(layer.kernel), dtype)
        b = layer.bias
        if b is not None:
            b = tf.cast(tf.convert_to_tensor(b), dtype)
            aff._check_bias(b, kernel.shape[-1])
        layers.append(
            aff.AffineLayer(
                layer.kind,
                kernel,
                b,
                layer.strides,
                layer.padding,
                layer.dilation_rate,
            )
        )
    _check_chain(layers)
    return layers


def _check_chain(layers):
    if layers[-1].kind != "dense":
        raise ValueError(
            "The last layer must be dense (the logits). "
            f"Received: a {layers[-1].kind} last layer"
        )
    for i in range(len(layers) - 1):
        a, b = layers[i], layers[i + 1]
        out = int(a.kernel.shape[-1])
        if b.kind == "conv":
            if a.kind == "dense":
                raise ValueError(
                    f"A conv layer cannot follow a dense layer (layer {i + 1})."
                )
            ok = int(b.kernel.shape[2]) == out
        elif a.kind == "dense":
            ok = int(b.kernel.shape[0]) == out
        else:
            # conv -> dense: the flattened size is checked when applied.
            ok = int(b.kernel.shape[0]) % out == 0
        if not ok:
            raise ValueError(
                f"Kernel shapes do not chain: layer {i} has {out} outputs but "
                f"layer {i + 1} has kernel.shape={tuple(b.kernel.shape)}"
            )


def _prepare(kernels, x, eps_x, eps_w, variant, biases, eps_b):
    _check_variant(variant)
    layers = as_layers(kernels, biases)
    n = len(layers)
    eps_x = _check_eps_x(eps_x)
    eps_w = _eps_list(eps_w, n, "eps_w")
    eps_b = eps_w if eps_b is None else _eps_list(eps_b, n, "eps_b")
    if variant in ("paper", "lemma") and any(
        layer.kind != "dense" or layer.bias is not None for layer in layers
    ):
        raise ValueError(
            f"variant={variant!r} is defined by the paper for bias-free dense "
            "networks only; use variant='sound' or 'interval' for "
            "convolutions or biases."
        )
    x = tf.cast(tf.convert_to_tensor(x), layers[0].kernel.dtype)
    return layers, x, eps_x, eps_w, eps_b


# ---------------------------------------------------------------- engine


def _relu(t):
    return tf.nn.relu(t)


def _is_zero(c):
    return isinstance(c, float) and c == 0.0


def _add(t, c):
    """``t + c``, skipping the op when ``c`` is the Python number 0."""
    return t if _is_zero(c) else t + c


def _scale(c, t):
    """``c * t`` for a Python or tensor scalar ``c``; None when ``c == 0``."""
    return None if _is_zero(c) else c * t


def _sum_terms(*terms):
    """Sum of the terms, dropping None and Python zeros (0.0 if none left)."""
    terms = [t for t in terms if t is not None and not _is_zero(t)]
    if not terms:
        return 0.0
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def _field_l1(layer, v):
    """Per-output receptive-field l1 of ``v >= 0``, broadcastable, and its
    per-example max ``(B,)``."""
    if layer.kind == "dense":
        total = aff.row_sum(v)
        return total[:, None], total
    field = aff.patch_l1(layer, v)
    return field, aff.batch_max(field)


def _bias_radius(layer, eb):
    return eb if layer.bias is not None else 0.0


def _width_terms(layer, width, kernel, ew):
    """``width`` through ``(K + eps)^+`` and ``(eps - K)^+``.

    Under XLA, for a dense layer both products come from ONE matmul with the
    two kernels side by side (per-step weight work, half the per-example
    dots).
    """
    if layer.kind != "dense" or not aff.compiling_with_xla():
        # Graph mode: two matmuls beat one wider matmul plus concat/split.
        plus, minus = _relu(kernel + ew), _relu(ew - kernel)
        return aff.linear(layer, width, plus), aff.linear(layer, width, minus)
    # relu([K, -K] + eps) = [(K + eps)^+, (eps - K)^+], one matmul (XLA).
    both = _relu(_add(tf.concat([kernel, -kernel], axis=1), ew))
    return tf.split(aff.linear(layer, width, both), 2, axis=1)


def _hidden_bounds(layers, norms, x, z1, eps_w, eps_b, variant, h_last=None):
    """Bounds on the perturbed last hidden layer at the clean input.

    Returns:
        ``(e, u, l, h)``: ``e`` (B,) bounds ``||hhat^{L-1} - h^{L-1}||_inf``
        (for "paper"/"lemma": the bracket of eq. 22 without the last term;
        None for "interval_exact"); ``u`` (B, n) upper bound of
        ``hhat^{L-1}`` (``h^{L-1*}``, or the interval bound); ``l`` and ``h``
        ("interval_exact" only; else None): lower bound and clean value.
    """
    first = layers[0]
    eb = _bias_radius(first, eps_b[0])
    field, field_max = _field_l1(first, tf.abs(x))
    shift = _sum_terms(_scale(eps_w[0], field), eb)
    e = _sum_terms(_scale(eps_w[0], field_max), eb)
    if not isinstance(e, (tf.Tensor, tf.Variable)):  # eps_1 = 0
        e = _add(tf.zeros_like(field_max), e)
    u = _relu(_add(z1, shift))
    interval = variant in ("interval", "interval_exact")
    exact = variant == "interval_exact"
    if interval:
        lo = _relu(z1 - shift) if not _is_zero(shift) else _relu(z1)
        h = _relu(z1) if exact and h_last is None else None
    for m in range(1, len(layers) - 1):
        layer, ew = layers[m], eps_w[m]
        eb = _bias_radius(layer, eps_b[m])
        kernel = layer.kernel
        if not exact:
            # e_m = N_m e_{m-1} + eps_m ||u^{m-1}||_1 (+ eps_b), with u the
            # upper bound of this layer's input (h*, or the interval bound).
            e = _sum_terms(norms[m] * e, _scale(ew, _field_l1(layer, u)[1]), eb)
        if interval:
            base = aff.linear(layer, lo)
            if layer.bias is not None:
                base = base + layer.bias
            spread = _sum_terms(_scale(ew, _field_l1(layer, lo)[0]), eb)
            width = u - lo
            up, dn = _width_terms(layer, width, kernel, ew)
            up = _add(base, spread) + up
            dn = (base - spread if not _is_zero(spread) else base) - dn
            u, lo = _relu(up), _relu(dn)
            if h is not None:
                h = _relu(aff.affine(layer, h))
            continue
        star = kernel + ew if not _is_zero(ew) else kernel
        if variant == "sound" and not _is_zero(ew):
            star = _relu(star)
        elif variant == "sound":
            star = _relu(kernel)
        z = aff.linear(layer, u, star)
        if layer.bias is not None:
            z = z + layer.bias
        u = _relu(_add(z, eb))
    if variant in ("paper", "lemma") and len(layers) == 2:
        # Printed form for L = 2: eps_{L-1}||h^{L-2*}||_1 = eps_1||x||_1
        # repeats the first term (valid, looser).
        e = 2.0 * e
    u = aff.flatten(u)
    if not exact:
        return e, u, None, None
    h = h_last if h is None else h
    return None, u, aff.flatten(lo), aff.flatten(h)


def _inf_norms(layers):
    return [aff.inf_norm(layer) for layer in layers[:-1]]


def _tau_factors(layers, norms, eps_w):
    """``P = prod_{m<L} (N_m + d_m eps_m)`` and ``2 d_L eps_L`` (eq. 21)."""
    prod = None
    for layer, norm, ew in zip(layers[:-1], norms, eps_w[:-1], strict=True):
        factor = _add(norm, aff.fan_in(layer) * ew)
        prod = factor if prod is None else prod * factor
    return prod, 2.0 * aff.fan_in(layers[-1]) * eps_w[-1]


def _row_distances(kernel):
    """``D[i, j] = ||W^L_i - W^L_j||_1`` from an ``(n, K)`` Keras kernel."""
    return tf.reduce_sum(
        tf.abs(kernel[:, :, None] - kernel[:, None, :]), axis=0
    )


def _last_bias_term(layers, eps_b):
    return 2.0 * eps_b[-1] if layers[-1].bias is not None else 0.0


# ---------------------------------------------------------------- public


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
    layers, x, eps_x, eps_w, eps_b = _prepare(
        kernels, x, eps_x, eps_w, variant, biases, eps_b
    )
    if variant == "joint_interval":
        return _joint_interval(layers, x, None, eps_x, eps_w, eps_b)
    z1 = aff.affine(layers[0], x)
    norms = _inf_norms(layers)
    e, u, lo, h = _hidden_bounds(layers, norms, x, z1, eps_w, eps_b, variant)
    last = layers[-1].kernel
    dist = _row_distances(last)
    k = tf.shape(dist)[0]
    offdiag = 1.0 - tf.eye(k, dtype=dist.dtype)
    prod, last_w = _tau_factors(layers, norms, eps_w)
    tau = eps_x * (dist + last_w) * prod * offdiag
    bias_term = _last_bias_term(layers, eps_b)
    l1u = tf.reduce_sum(u, axis=1)[:, None, None]
    if variant == "interval_exact":
        cols = tf.transpose(last)
        delta = cols[:, None, :] - cols[None, :, :]
        t = delta + 2.0 * eps_w[-1]
        zeta = (
            tf.einsum("ijr,br->bij", _relu(t), u)
            - tf.einsum("ijr,br->bij", _relu(-t), lo)
            - tf.einsum("ijr,br->bij", delta, h)
            + bias_term
        )
    elif variant == "paper":
        zeta = dist[None] * (e[:, None, None] + 2.0 * eps_w[-1] * l1u)
    else:
        zeta = dist[None] * e[:, None, None] + 2.0 * eps_w[-1] * l1u
        zeta = zeta + bias_term
    return tau, zeta * offdiag


def _labels(y, k):
    y = tf.convert_to_tensor(y)
    if y.shape.rank == 2:
        y = tf.argmax(y, axis=-1)
    if y.shape.rank != 1:
        raise ValueError(
            "`y` must be integer labels (B,) or one-hot (B, K). "
            f"Received: y.shape={tuple(y.shape)}"
        )
    return tf.cast(y, tf.int32)


def _penalty(layers, x, y, z1, eps_x, eps_w, eps_b, variant, h_last=None):
    if variant == "joint_interval":
        return _joint_interval(layers, x, y, eps_x, eps_w, eps_b)
    norms = _inf_norms(layers)
    e, u, lo, h = _hidden_bounds(
        layers, norms, x, z1, eps_w, eps_b, variant, h_last
    )
    last = layers[-1].kernel
    k = int(last.shape[-1])
    if k < 2:
        raise ValueError(
            f"The network needs at least 2 outputs. Received: {k} output(s)"
        )
    y = _labels(y, k)
    dtype = last.dtype
    # D >= 0 with a zero diagonal, so the max over y' != y is the column max.
    dist_y = tf.gather(tf.reduce_max(_row_distances(last), axis=0), y)
    if _is_zero(eps_x):
        tau = tf.zeros_like(dist_y)
    else:
        prod, last_w = _tau_factors(layers, norms, eps_w)
        tau = eps_x * _add(dist_y, last_w) * prod
    bias_term = _last_bias_term(layers, eps_b)
    l1u = aff.row_sum(u)
    if variant == "interval_exact":
        # sum_r relu(t) u - relu(-t) l - delta h with t = delta + 2 eps_L
        #   = (u - h) . delta + 2 eps_L ||u||_1 + sum_r relu(-t) (u - l),
        # and (u - h) . delta = ((u - h) K^L)[k] - ((u - h) K^L)[y].
        g = tf.matmul(u - h, last)
        g = g - tf.gather(g, y[:, None], batch_dims=1)
        cols = tf.transpose(last)
        t = _add(
            cols[None, :, :] - tf.gather(cols, y)[:, None, :], 2.0 * eps_w[-1]
        )
        per_class = _sum_terms(
            g,
            _scale(2.0 * eps_w[-1], l1u[:, None]),
            tf.reduce_sum(_relu(-t) * (u - lo)[:, None, :], axis=2),
        )
        not_y = tf.not_equal(tf.range(k)[None, :], y[:, None])
        per_class = tf.where(not_y, per_class, tf.cast(dtype.min, dtype))
        return tau, _add(tf.reduce_max(per_class, axis=1), bias_term)
    last_term = _scale(2.0 * eps_w[-1], l1u)
    if variant == "paper":
        inner = _sum_terms(e, last_term)
        return tau, dist_y * inner
    zeta = _sum_terms(dist_y * e, last_term)
    return tau, _add(zeta, bias_term)


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
    layers, x, eps_x, eps_w, eps_b = _prepare(
        kernels, x, eps_x, eps_w, variant, biases, eps_b
    )
    z1 = first_preactivation
    if z1 is None:
        z1 = aff.affine(layers[0], x)
    return _penalty(layers, x, y, z1, eps_x, eps_w, eps_b, variant)


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
    layers, x, eps_x, eps_w, eps_b = _prepare(
        kernels, x, eps_x, eps_w, variant, biases, eps_b
    )
    z1 = aff.affine(layers[0], x)
    h = _relu(z1)
    for layer in layers[1:-1]:
        h = _relu(aff.affine(layer, h))
    logits = aff.affine(layers[-1], h)
    tau, zeta = _penalty(
        layers, x, y, z1, eps_x, eps_w, eps_b, variant, aff.flatten(h)
    )
    return logits, tau, zeta


def forward(kernels, x, *, biases=None):
    """Clean logits of the ReLU network given by ``kernels`` (and biases)."""
    layers = as_layers(kernels, biases)
    h = tf.cast(tf.convert_to_tensor(x), layers[0].kernel.dtype)
    for layer in layers[:-1]:
        h = _relu(aff.affine(layer, h))
    return aff.affine(layers[-1], h)
