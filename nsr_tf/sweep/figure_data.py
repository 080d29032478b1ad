"""Per-example quantities the SN paper's figures plot, from logits and norms.

Margins and their Fig. 3 normalization (the SN repository's simplified
normalizer and its per-layer factors), and the norm gain of Fig. 2a. They
are defined for the figures only; the capacity norms Phi themselves live in
:mod:`nsr_tf.bounds.phi`, and the per-layer norms of a model in
:mod:`nsr_tf.bounds.model_norms`.

Reference:
    Farnia, Zhang, Tse. Generalizable Adversarial Training via Spectral
    Normalization. ICLR 2019. Figs. 2a and 3.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from nsr_tf import checks
from nsr_tf.bounds import model_norms
from nsr_tf.bounds import phi as phi_lib


def fig3_normalizer(
    spectral_norms, frobenius_norms, *, adversarial=False, factors=None
) -> float:
    """The simplified margin normalizer of the SN repository's Fig. 3.

    ``P * S`` (ERM) or ``P * (1 + sum_i prod_{j<i} sigma_j) * S``
    (FGM/PGM), with ``P = prod sigma_i`` and
    ``S = sqrt(sum_i c_i F_i^2 / sigma_i^2)``. With all ``c_i = 1`` the ERM
    form equals ``sqrt(phi_erm)``.

    Args:
        spectral_norms: ``sigma_i`` per layer.
        frobenius_norms: ``||W_i||_F`` per layer.
        adversarial: use the FGM/PGM form.
        factors: optional ``c_i`` per layer (the repository uses
            ``H*W*C_in/4`` of a conv layer's input, 1 for dense layers:
            :func:`fig3_factors` computes them from a model).

    Returns:
        The normalizer as a float.

    Raises:
        ValueError: bad norms or factors.

    Reference:
        Farnia et al. 2019, Fig. 3; spec sn_paper.md section 8.
    """
    s, f = phi_lib.check_norms(spectral_norms, frobenius_norms)
    c = (
        np.ones_like(s)
        if factors is None
        else phi_lib.check_positive_values(factors, "factors")
    )
    if c.shape != s.shape:
        raise ValueError(
            "`factors` must have one entry per layer. "
            f"Received: {c.size} for {s.size} layers"
        )
    value = np.prod(s) * np.sqrt(np.sum(c * f**2 / s**2))
    if adversarial:
        prefix = np.concatenate([[1.0], np.cumprod(s)[:-1]])
        value *= 1.0 + np.sum(prefix)
    return float(value)


def fig3_factors(model) -> np.ndarray:
    """Per-layer factors ``c_i`` of the SN repository's Fig. 3 normalizer.

    ``c_i = H * W * C_in / 4`` for a conv layer (its input shape), ``1`` for a
    dense layer, in the order of
    :func:`~nsr_tf.bounds.model_norms.layer_norms`. The repository divides
    every conv layer's squared Frobenius norm by 4 (its comment says "stride
    squared", but AlexNet's convolutions have stride 1); this follows the
    code literally.

    Args:
        model: a built ``keras.Model`` with fixed input shape.

    Returns:
        float64 NumPy array, one entry per Dense/Conv2D layer; pass it as
        ``factors`` to :func:`fig3_normalizer`.

    Raises:
        ValueError: if the model has no weight layer or a conv input shape
            is unknown.

    Reference:
        Farnia et al. 2019, Fig. 3; spec sn_paper.md section 8
        (``notebooks_figures/analysis.py: compute_margins``).
    """
    factors = []
    for layer in model_norms.weight_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            factors.append(
                float(np.prod(model_norms.conv_input_shape(layer))) / 4.0
            )
        else:
            factors.append(1.0)
    return np.array(factors)


def margins(logits, y) -> tf.Tensor:
    """``f(x)[y] - max_{j != y} f(x)[j]`` per example.

    Args:
        logits: ``(B, K)`` with ``K >= 2``.
        y: integer labels ``(B,)`` or one-hot ``(B, K)``.

    Returns:
        ``(B,)`` margins (negative when misclassified).

    Raises:
        ValueError: fewer than 2 classes or labels of the wrong rank.

    Reference:
        Farnia et al. 2019, Fig. 3; Bartlett et al. 2017.
    """
    logits = tf.convert_to_tensor(logits)
    k = logits.shape[-1]
    if logits.shape.rank != 2 or k is None or k < 2:
        raise ValueError(
            "`logits` must have shape (B, K) with K >= 2. "
            f"Received: logits.shape={tuple(logits.shape)}"
        )
    y = checks.class_indices(y, k)
    onehot = tf.cast(tf.one_hot(tf.cast(y, tf.int32), k), tf.bool)
    true = tf.reduce_sum(tf.where(onehot, logits, tf.zeros_like(logits)), 1)
    other = tf.reduce_max(
        tf.where(onehot, tf.cast(logits.dtype.min, logits.dtype), logits), 1
    )
    return true - other


def normalized_margins(logits, y, phi) -> tf.Tensor:
    """Margins divided by ``sqrt(Phi)`` (the capacity normalization).

    Args:
        logits: ``(B, K)``.
        y: labels.
        phi: a capacity norm from
            :func:`~nsr_tf.bounds.phi.phi_erm` etc. (> 0), or a
            normalizer from :func:`fig3_normalizer` squared.

    Returns:
        ``(B,)`` normalized margins.

    Raises:
        ValueError: ``phi <= 0`` or bad logits/labels.

    Reference:
        Farnia et al. 2019, Fig. 3.
    """
    phi = phi_lib.check_positive(phi, "phi")
    m = margins(logits, y)
    return m / tf.cast(math.sqrt(phi), m.dtype)


def norm_gain(logits, x) -> tf.Tensor:
    """``||f(x)||_2 / ||x||_2`` per example (Fig. 2a).

    Args:
        logits: ``(B, K)`` network outputs.
        x: ``(B, ...)`` inputs (flattened per example).

    Returns:
        ``(B,)`` gains; ``inf`` or ``nan`` where ``x`` is zero.

    Reference:
        Farnia et al. 2019, Fig. 2a.
    """
    logits = tf.convert_to_tensor(logits)
    x = tf.cast(tf.convert_to_tensor(x), logits.dtype)
    num = tf.norm(tf.reshape(logits, [tf.shape(logits)[0], -1]), axis=1)
    den = tf.norm(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)
    return num / den
