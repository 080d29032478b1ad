"""Certified accuracy: l2 Lipschitz-margin certificates and joint interval
surfaces, the proved counterpart of the attacked accuracies.

* :func:`certified_accuracy`: an example is certified at l2 radius ``eps``
  when it is correctly classified and its logit margin (top logit minus the
  runner-up) exceeds ``sqrt(2) L eps``, with ``L`` from
  :func:`nsr_tf.bounds.lipschitz.lipschitz_constant` (true operator norms
  of the effective kernels). Each margin ``f_y - f_j = (e_y - e_j)^T f`` is
  ``sqrt(2) L``-Lipschitz, so no ``||delta||_2 <= eps`` can flip it.
* :func:`certified_surface`: the fraction of examples whose every pairwise
  margin ``f_y - f_j`` has a positive lower bound from the joint interval
  bound (:mod:`nsr_tf.bounds.joint_interval`) over the input box
  ``eps_x`` (l_inf) and the weight box ``eps_w``, on a grid.

Both are lower bounds of the accuracy under any attack of the same budget
(``nsr_tf.attacks.pgd`` with ``norm=2``, ``accuracy_surface``).
"""

from typing import Any

import numpy as np
import tensorflow as tf

from nsr_tf.bounds import joint_interval
from nsr_tf.bounds import keras_model
from nsr_tf.bounds import lipschitz
from nsr_tf.evaluation import surface


def _labels(y: Any) -> np.ndarray:
    y = np.asarray(y)
    return np.argmax(y, axis=-1) if y.ndim > 1 else y.astype(np.int64)


def _check_data(x, y, batch_size):
    if len(x) != len(y):
        raise ValueError(
            "`x` and `y` must have the same number of examples. Received: "
            f"len(x)={len(x)}, len(y)={len(y)}"
        )
    if (
        isinstance(batch_size, bool)
        or int(batch_size) != batch_size
        or (batch_size < 1)
    ):
        raise ValueError(
            f"`batch_size` must be an integer >= 1. Received: "
            f"batch_size={batch_size}"
        )


def _check_eps(eps: Any) -> np.ndarray:
    values = np.asarray(eps, dtype=np.float64)
    if values.ndim > 1 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(
            "`eps` must be a number or a 1-D list of finite numbers >= 0. "
            f"Received: eps={eps!r}"
        )
    return values


def logit_margins(model: Any, x: Any, y: Any, *, batch_size: int = 500):
    """Correctness and top-minus-runner-up logit margins, in one pass.

    Returns:
        ``(correct, margin)``: boolean and float64 arrays ``(N,)``.
    """
    labels = _labels(y)
    correct, margin = [], []
    for s in range(0, len(x), batch_size):
        logits = np.asarray(model(x[s : s + batch_size], training=False))
        top2 = np.sort(logits, axis=-1)[:, -2:]
        correct.append(np.argmax(logits, -1) == labels[s : s + batch_size])
        margin.append(top2[:, 1].astype(np.float64) - top2[:, 0])
    return np.concatenate(correct), np.concatenate(margin)


def certified_accuracy(
    model: Any,
    x: Any,
    y: Any,
    *,
    eps: Any,
    norm: Any = 2,
    batch_size: int = 500,
    lipschitz_constant: float | None = None,
    iterations: int = lipschitz.CONV_ITERATIONS,
) -> float | np.ndarray:
    """Fraction of ``x`` certified robust to every l2 perturbation <= eps.

    Args:
        model: a chain ``keras.Model`` giving logits (see
            :mod:`nsr_tf.bounds.lipschitz` for the supported layers).
        x: inputs.
        y: integer labels ``(N,)`` or one-hot.
        eps: l2 radius, or a 1-D list/array of radii (one margin pass for
            all of them).
        norm: only 2 (l2) is supported.
        batch_size: forward-pass batch size.
        lipschitz_constant: a precomputed ``L`` (skips its computation).
        iterations: power-iteration steps for convolution/pooling norms.

    Returns:
        A float for a scalar ``eps``, else an array like ``eps``.

    Raises:
        ValueError: a norm other than 2, a bad ``eps``/``batch_size``,
            mismatched ``x``/``y``, or a layer without a known constant.

    Reference:
        Tsuzuku, Sato and Sugiyama, NeurIPS 2018, Prop. 1 (margin >
        sqrt(2) L eps); ``docs/certificates.md``.
    """
    if str(norm).lower() not in ("2", "2.0", "l2"):
        raise ValueError(
            f"`norm` must be 2 (l2 certificates). Received: norm={norm!r}"
        )
    values = _check_eps(eps)
    _check_data(x, y, batch_size)
    if lipschitz_constant is None:
        lipschitz_constant = lipschitz.lipschitz_constant(
            model, iterations=iterations
        )
    correct, margin = logit_margins(model, x, y, batch_size=batch_size)
    radius = np.sqrt(2.0) * float(lipschitz_constant) * np.ravel(values)
    ok = correct[:, None] & (margin[:, None] > radius[None, :])
    acc = ok.mean(axis=0) if len(x) else np.zeros(len(radius))
    return float(acc[0]) if values.ndim == 0 else acc.reshape(values.shape)


def bound_certified_accuracy(
    model: Any,
    x: Any,
    y: Any,
    *,
    eps_x: float,
    eps_w: float,
    variant: str = "sound",
    batch_size: int = 500,
) -> float:
    """Certified accuracy from a margin bound of :mod:`nsr_tf.bounds`.

    Example ``b`` is certified when it is correctly classified and every
    clean margin ``f_y - f_j`` exceeds the bound on its decrease,
    ``tau[j, y] + zeta[b, j, y]`` (NSR eq. 20). With
    ``variant="joint_interval"`` this equals :func:`certified_surface` at
    one grid point; with ``"sound"`` it shows how much the tau/zeta split
    loses.

    Args:
        model: a model supported by ``nsr_tf.bounds.check_supported``.
        x: inputs.
        y: integer labels or one-hot.
        eps_x: l_inf input radius.
        eps_w: element-wise weight radius (biases: the same, as the bounds).
        variant: one of ``nsr_tf.bounds.VARIANTS`` except "paper"/"lemma"
            (not valid bounds).
        batch_size: examples per pass.

    Returns:
        The certified fraction.

    Raises:
        ValueError: an unsound variant, an unsupported model or bad data.
    """
    from nsr_tf.bounds import margin

    if variant not in margin.VARIANTS or variant in ("paper", "lemma"):
        raise ValueError(
            "`variant` must be a sound bound variant. "
            f"Received: variant={variant!r}"
        )
    _check_data(x, y, batch_size)
    labels = _labels(y)
    certified = 0
    for s in range(0, len(x), batch_size):
        xb, yb = x[s : s + batch_size], labels[s : s + batch_size]
        tau, zeta = keras_model.pairwise_tau_zeta_from_model(
            model, xb, eps_x=eps_x, eps_w=eps_w, variant=variant
        )
        logits = np.asarray(model(xb, training=False), np.float64)
        rows = np.arange(len(xb))
        # tau[j, y_b] + zeta[b, j, y_b] bounds the increase of f_j - f_y.
        drop = np.asarray(tau)[:, yb].T + np.asarray(zeta)[rows, :, yb]
        robust = logits[rows, yb][:, None] - logits - drop
        robust[rows, yb] = np.inf
        ok = (np.argmax(logits, -1) == yb) & np.all(robust > 0, axis=1)
        certified += int(ok.sum())
    return certified / max(len(x), 1)


def _compiled_counter(layers, clip_min, clip_max, eps_b):
    @tf.function(reduce_retracing=True)
    def count(x, y, eps_x, eps_w):
        eb = eps_w if eps_b is None else tf.cast(eps_b, eps_w.dtype)
        mask = joint_interval.certified_mask(
            layers, x, y, eps_x=eps_x, eps_w=eps_w, eps_b=eb,
            clip_min=clip_min, clip_max=clip_max,
        )  # fmt: skip
        return tf.reduce_sum(tf.cast(mask, tf.int64))

    return count


def certified_surface(
    model: Any,
    x: Any,
    y: Any,
    eps_x_grid: Any,
    eps_w_grid: Any,
    *,
    batch_size: int = 1000,
    eps_b: float | None = None,
    clip_min: float | None = None,
    clip_max: float | None = None,
) -> tuple[np.ndarray, float]:
    """Joint interval certified accuracy on every (eps_x, eps_w) of a grid.

    Args:
        model: a ReLU Dense/Conv2D chain (``nsr_tf.bounds.check_supported``).
        x: test inputs.
        y: true labels.
        eps_x_grid: increasing l_inf input radii (>= 2 values).
        eps_w_grid: increasing element-wise weight radii (absolute).
        batch_size: examples per bound pass.
        eps_b: bias radius (default: ``eps_w`` at each grid point, as the
            NSR bounds; 0 keeps biases fixed). Bias-free models ignore it.
        clip_min: optional lower data bound intersected with the input box.
        clip_max: optional upper data bound.

    Returns:
        ``(acc, auc)`` as :func:`~nsr_tf.evaluation.accuracy_surface`:
        ``acc[i, j]`` at ``(eps_x_grid[i], eps_w_grid[j])`` and ``auc =
        surface_auc(acc, ...)``.

    Raises:
        ValueError: bad grids, an unsupported model or mismatched data.
    """
    ex = surface._check_grid("eps_x_grid", eps_x_grid)
    ew = surface._check_grid("eps_w_grid", eps_w_grid)
    _check_data(x, y, batch_size)
    layers = keras_model.model_layers(model)
    layers = [
        type(a)(a.kind, tf.convert_to_tensor(a.kernel),
                None if a.bias is None else tf.convert_to_tensor(a.bias),
                a.strides, a.padding, a.dilation_rate)
        for a in layers
    ]  # fmt: skip
    dtype = layers[0].kernel.dtype
    count = _compiled_counter(layers, clip_min, clip_max, eps_b)
    labels = _labels(y).astype(np.int32)
    hits = np.zeros((len(ex), len(ew)), dtype=np.int64)
    for s in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(np.asarray(x[s : s + batch_size]), dtype)
        yb = tf.constant(labels[s : s + batch_size])
        for i, eps_x in enumerate(ex):
            for j, eps_w in enumerate(ew):
                hits[i, j] += int(
                    count(xb, yb, tf.constant(eps_x, dtype),
                          tf.constant(eps_w, dtype))
                )  # fmt: skip
    acc = hits / max(len(x), 1)
    return acc, surface.surface_auc(acc, ex, ew)
