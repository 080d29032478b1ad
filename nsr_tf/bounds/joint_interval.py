"""Joint interval bound: input box and weight box propagated together.

For a ReLU network ``f_W(x) = A_L(rho(... rho(A_1(x))))`` with affine
layers ``A_m(h) = W^m h + b^m`` (dense or 2-D convolution), this module
bounds every pairwise logit margin ``f_a - f_c`` over the joint set

* ``|xhat - x| <= eps_x`` element-wise (an l_inf ball; optionally
  intersected with the data range ``[clip_min, clip_max]``),
* ``|What^m - W^m| <= eps_w[m]`` element-wise (absolute, as the NSR
  bounds of :mod:`nsr_tf.bounds.margin`),
* ``|bhat^m - b^m| <= eps_b[m]`` for layers with a bias (default
  ``eps_b = eps_w``, the convention of ``docs/bounds.md``; pass ``eps_b=0``
  to keep biases fixed),

by interval bound propagation over the input box and the weight box
*together*. Each hidden layer maps an interval ``[l, u]`` of its input to
the interval of its pre-activation, then ReLU is applied to both ends.

The product of an interval weight and an interval activation is exact per
term. For a non-negative input (``0 <= l <= u``, every post-ReLU layer)
``max_{w, h} w h = max((W + e) u, (W + e) l) = (W + e)^+ u - (W + e)^- l``
and ``min_{w, h} w h = (W - e)^+ l - (W - e)^- u``, so each output's bounds
are four linear maps with the kernels ``(W +- e)^+-``, and they are the
exact range of that output over the box (every weight of one output
multiplies one input; a convolution's zero padding contributes 0). An input
of any sign is split as ``h = p - n`` with ``p = h^+``, ``n = h^-`` (both
non-negative intervals); this is exact unless a coordinate's interval
straddles 0, and always sound.

The last layer is never bounded through the logit intervals: the margin
``f_a - f_c = sum_i (W_ia - W_ic) h_i + (b_a - b_c)`` has per-term weight
``d_i in [D_i - 2 e, D_i + 2 e]`` with ``D = W_a - W_c`` (the two columns
are perturbed independently), so its exact lower bound over the box of
``h >= 0`` is ``sum_i (D_i - 2e)^+ l_i - (2e - D_i)^+ u_i + b_a - b_c -
2 e_b``. This is much tighter than ``lower(f_a) - upper(f_c)`` because the
shared activations cancel.

Everything is pure TensorFlow on the effective kernels (a list of
:class:`~nsr_tf.bounds.affine.AffineLayer`), differentiable and traceable
inside ``tf.function``; usable as a certificate
(:func:`margin_lower_bounds`) and as a training penalty
(:func:`margin_increase`, the ``"joint_interval"`` variant of
:mod:`nsr_tf.bounds.margin`).

Reference:
    Gowal et al. 2018 (interval bound propagation); Tsai et al. 2021
    (joint input-weight perturbations, NSR eq. 20); ``docs/certificates.md``.
"""

import numbers

import tensorflow as tf

from nsr_tf.bounds import affine as aff


def _per_layer(eps, n, name):
    """One radius per layer, each a finite number >= 0 or a scalar tensor."""
    if isinstance(eps, (tf.Tensor, tf.Variable)) and eps.shape.rank == 0:
        return [eps] * n
    values = [eps] * n if isinstance(eps, numbers.Real) else list(eps)
    if len(values) != n:
        raise ValueError(
            f"`{name}` must be a number or hold one value per layer ({n}). "
            f"Received: {name}={eps!r}"
        )
    for v in values:
        if isinstance(v, numbers.Real) and not 0 <= float(v) < float("inf"):
            raise ValueError(
                f"`{name}` must be >= 0 and finite. Received: {name}={eps!r}"
            )
    return values


def _to(value, dtype):
    """``value`` in ``dtype``; Python numbers are converted directly (a
    ``tf.cast`` of a Python float would round it through float32)."""
    if isinstance(value, numbers.Real):
        return tf.convert_to_tensor(value, dtype)
    return tf.cast(tf.convert_to_tensor(value), dtype)


def _nonneg_bounds(layer, lo, hi, e):
    """Exact bounds of ``A_What(h)`` (no bias) over ``h in [lo, hi] >= 0``
    and ``|What - W| <= e``.

    For ``h >= 0`` the weight maximizing ``w h`` is ``W + e`` whatever ``h``,
    and ``max_h (W + e) h = (W + e) c + |W + e| r`` (center ``c``, radius
    ``r`` of the box); likewise for the minimum. With ``(W +- e) c = W c +-
    e sum(c)`` this is three linear maps.
    """
    k = tf.convert_to_tensor(layer.kernel)
    c, r = (hi + lo) / 2.0, (hi - lo) / 2.0
    center = aff.linear(layer, c)
    spread = e * aff.patch_l1(layer, c)
    upper = center + spread + aff.linear(layer, r, tf.abs(k + e))
    lower = center - spread - aff.linear(layer, r, tf.abs(k - e))
    return lower, upper


def _affine_bounds(layer, lo, hi, e, eb, signed):
    """Bounds of ``A_What(h) + bhat`` over the boxes; ``signed`` inputs are
    split into positive and negative parts."""
    lower, upper = _nonneg_bounds(layer, tf.nn.relu(lo), tf.nn.relu(hi), e)
    if signed:
        # h = p - n with n in [relu(-hi), relu(-lo)] >= 0.
        n_lo, n_up = _nonneg_bounds(layer, tf.nn.relu(-hi), tf.nn.relu(-lo), e)
        lower, upper = lower - n_up, upper - n_lo
    if layer.bias is not None:
        b = _to(layer.bias, lower.dtype)
        lower, upper = lower + b - eb, upper + b + eb
    return lower, upper


def hidden_box(layers, x, *, eps_x, eps_w, eps_b=None, clip_min=None,
               clip_max=None):  # fmt: skip
    """Interval ``[l, u]`` of the last hidden layer (after ReLU, flattened).

    Args:
        layers: list of :class:`~nsr_tf.bounds.affine.AffineLayer` (the last
            one gives the logits and is not applied).
        x: clean inputs ``(B, ...)``.
        eps_x: input radius (l_inf), >= 0.
        eps_w: weight radius, a number or one per layer.
        eps_b: bias radius, a number or one per layer (default ``eps_w``).
        clip_min: optional lower data bound intersected with the input box.
        clip_max: optional upper data bound.

    Returns:
        ``(l, u)``, each ``(B, n_{L-1})`` with ``0 <= l <= u``.
    """
    n = len(layers)
    eps_w = _per_layer(eps_w, n, "eps_w")
    eps_b = eps_w if eps_b is None else _per_layer(eps_b, n, "eps_b")
    dtype = tf.as_dtype(layers[0].kernel.dtype)
    x = tf.cast(tf.convert_to_tensor(x), dtype)
    eps_x = _to(eps_x, dtype)
    lo, hi = x - eps_x, x + eps_x
    if clip_min is not None:
        lo = tf.maximum(lo, _to(clip_min, dtype))
    if clip_max is not None:
        hi = tf.minimum(hi, _to(clip_max, dtype))
    signed = not (
        clip_min is not None
        and isinstance(clip_min, numbers.Real)
        and clip_min >= 0
    )
    for m, layer in enumerate(layers[:-1]):
        e = _to(eps_w[m], dtype)
        eb = _to(eps_b[m], dtype)
        lo, hi = _affine_bounds(layer, lo, hi, e, eb, signed and m == 0)
        lo, hi = tf.nn.relu(lo), tf.nn.relu(hi)
    return aff.flatten(lo), aff.flatten(hi)


def pairwise_margin_lower_bounds(layers, x, *, eps_x, eps_w, eps_b=None,
                                 clip_min=None, clip_max=None):  # fmt: skip
    """Lower bounds ``M[b, a, c] <= f_a - f_c`` over the joint box.

    Args:
        layers, x, eps_x, eps_w, eps_b, clip_min, clip_max: as in
            :func:`hidden_box`. The last layer must be dense.

    Returns:
        ``(B, K, K)`` tensor; the diagonal is exactly 0.

    Raises:
        ValueError: a non-dense last layer or a bad radius.
    """
    last = layers[-1]
    if last.kind != "dense":
        raise ValueError(
            "The last layer must be dense (the logits). "
            f"Received: a {last.kind} last layer"
        )
    n = len(layers)
    w_list = _per_layer(eps_w, n, "eps_w")
    b_list = w_list if eps_b is None else _per_layer(eps_b, n, "eps_b")
    lo, hi = hidden_box(
        layers, x, eps_x=eps_x, eps_w=w_list, eps_b=b_list,
        clip_min=clip_min, clip_max=clip_max,
    )  # fmt: skip
    kernel = tf.cast(tf.convert_to_tensor(last.kernel), lo.dtype)
    e = _to(w_list[-1], lo.dtype)
    k = int(kernel.shape[-1])
    cols = tf.transpose(kernel)  # (K, n)
    diff = cols[:, None, :] - cols[None, :, :]  # D[a, c] = W_a - W_c
    pos = tf.reshape(tf.nn.relu(diff - 2.0 * e), [k * k, -1])
    neg = tf.reshape(tf.nn.relu(2.0 * e - diff), [k * k, -1])
    bound = tf.matmul(lo, pos, transpose_b=True) - tf.matmul(
        hi, neg, transpose_b=True
    )
    bound = tf.reshape(bound, [-1, k, k])
    if last.bias is not None:
        b = _to(last.bias, lo.dtype)
        eb = _to(b_list[-1], lo.dtype)
        bound = bound + (b[:, None] - b[None, :]) - 2.0 * eb
    offdiag = 1.0 - tf.eye(k, dtype=lo.dtype)
    return bound * offdiag


def _labels(y):
    y = tf.convert_to_tensor(y)
    if y.shape.rank == 2:
        y = tf.argmax(y, axis=-1)
    if y.shape.rank != 1:
        raise ValueError(
            "`y` must be integer labels (B,) or one-hot (B, K). "
            f"Received: y.shape={tuple(y.shape)}"
        )
    return tf.cast(y, tf.int32)


def margin_lower_bounds(layers, x, y, **kwargs):
    """Lower bounds of ``f_y - f_j`` for every class ``j`` over the box.

    Args:
        layers: list of :class:`~nsr_tf.bounds.affine.AffineLayer`.
        x: clean inputs ``(B, ...)``.
        y: integer labels ``(B,)`` or one-hot ``(B, K)``.
        **kwargs: ``eps_x``, ``eps_w``, ``eps_b``, ``clip_min``,
            ``clip_max`` as in :func:`hidden_box`.

    Returns:
        ``(B, K)``; entry ``[b, y_b]`` is 0. Example ``b`` is certified when
        every other entry is > 0.
    """
    pairwise = pairwise_margin_lower_bounds(layers, x, **kwargs)
    return tf.gather(pairwise, _labels(y), axis=1, batch_dims=1)


def certified_mask(layers, x, y, **kwargs):
    """Boolean ``(B,)``: the label wins against every class over the box."""
    bounds = margin_lower_bounds(layers, x, y, **kwargs)
    k = int(bounds.shape[-1])
    is_y = tf.one_hot(_labels(y), k, on_value=True, off_value=False)
    return tf.reduce_all(tf.logical_or(is_y, bounds > 0), axis=1)


def clean_logits(layers, x, dtype):
    """The clean logits of the ReLU chain ``layers`` in ``dtype``."""
    h = tf.cast(tf.convert_to_tensor(x), dtype)
    for layer in layers[:-1]:
        h = tf.nn.relu(aff.affine(layer, h))
    return aff.affine(layers[-1], h)


def margin_increase(layers, x, y, *, logits=None, **kwargs):
    """Bound on ``max_{j != y} (f_j - f_y)(perturbed) - (f_j - f_y)(clean)``.

    The training penalty of the ``"joint_interval"`` variant: ``>= 0`` and
    ``>=`` the true worst increase of any wrong-class margin.

    Args:
        layers, x, y, **kwargs: as in :func:`margin_lower_bounds`.
        logits: optional clean logits ``(B, K)`` (computed if None).

    Returns:
        ``(B,)`` tensor.
    """
    bounds = margin_lower_bounds(layers, x, y, **kwargs)
    if logits is None:
        logits = clean_logits(layers, x, bounds.dtype)
    logits = tf.cast(logits, bounds.dtype)
    labels = _labels(y)
    f_y = tf.gather(logits, labels[:, None], batch_dims=1)
    increase = (f_y - logits) - bounds  # clean f_y - f_j minus its lower bound
    k = int(bounds.shape[-1])
    is_y = tf.one_hot(labels, k, on_value=True, off_value=False)
    increase = tf.where(is_y, tf.zeros_like(increase), increase)
    return tf.reduce_max(increase, axis=1)
