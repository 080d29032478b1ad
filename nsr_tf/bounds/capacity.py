"""Capacity norms Phi of the SN paper (Theorems 1-4), margins, norm gain.

For a network with weight layers ``W_1 .. W_d`` (spectral norms
``sigma_i = ||W_i||_2``, Frobenius norms ``F_i = ||W_i||_F``), Farnia et al.
bound the (adversarial) generalization gap by
``O(sqrt(B^2 d^2 h log(dh) Phi + ...) / (gamma sqrt(n)))`` with

* ``Phi_erm = prod sigma_i^2 * sum F_i^2 / sigma_i^2`` (Theorem 1),
* ``Phi_fgm = {prod sigma_i (1 + eps/kappa * lip)}^2 * sum ...`` (Thm 2),
* ``Phi_pgm = {prod sigma_i (1 + alpha/kappa * (1 - q^r) / (1 - q) * lip)}^2
  * sum ...`` with ``q = 2 alpha lip / kappa`` (Theorem 3),
* ``Phi_wrm = {prod sigma_i (1 + lip / (lambda - lip))}^2 * sum ...``
  (Theorem 4),

where ``lip = (prod_i sigma_i) sum_i prod_{j<=i} sigma_j`` bounds the
Lipschitz constant of ``grad_x loss(f(x), y)`` (Theorem 3). Margins are
normalized by ``sqrt(Phi)``, the factor that multiplies ``1/gamma`` in the
bound (Fig. 3).

Reference:
    Farnia, Zhang, Tse. Generalizable Adversarial Training via Spectral
    Normalization. ICLR 2019. Theorems 1-4 and Fig. 3.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from layers import override
from layers import spectral
from nsr_tf import checks

DEFAULT_ITERATIONS = 200


def _vector(values, name):
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"`{name}` must be a non-empty list of finite values > 0. "
            f"Received: {name}={values!r}"
        )
    return arr


def _norms(spectral_norms, frobenius_norms):
    s = _vector(spectral_norms, "spectral_norms")
    f = _vector(frobenius_norms, "frobenius_norms")
    if s.shape != f.shape:
        raise ValueError(
            "`spectral_norms` and `frobenius_norms` must have one entry per "
            f"layer. Received: {s.size} and {f.size} entries"
        )
    return s, f


def _positive(value, name, allow_zero=False):
    check = checks.check_nonnegative if allow_zero else checks.check_positive
    return float(check(name, value))


def lipschitz_gradient_bound(spectral_norms) -> float:
    """``lip = (prod_i sigma_i) * sum_i prod_{j<=i} sigma_j``.

    Args:
        spectral_norms: ``sigma_i`` of the d layers, in order.

    Returns:
        The bound on the Lipschitz constant of ``grad_x loss(f(x), y)``.

    Raises:
        ValueError: for an empty list or a value <= 0.

    Reference:
        Farnia et al. 2019, Theorem 3 (definition of lip-bar).
    """
    s = _vector(spectral_norms, "spectral_norms")
    return float(np.prod(s) * np.sum(np.cumprod(s)))


def _spread(s, f):
    return float(np.sum(f**2 / s**2))


def phi_erm(spectral_norms, frobenius_norms) -> float:
    """``Phi_erm = (prod sigma_i^2) sum_i F_i^2 / sigma_i^2`` (Theorem 1).

    Args:
        spectral_norms: ``sigma_i`` per layer.
        frobenius_norms: ``||W_i||_F`` per layer.

    Returns:
        Phi_erm as a float.

    Raises:
        ValueError: for mismatched or non-positive norms.

    Reference:
        Farnia et al. 2019, Theorem 1.
    """
    s, f = _norms(spectral_norms, frobenius_norms)
    return float(np.prod(s**2) * _spread(s, f))


def phi_fgm(spectral_norms, frobenius_norms, *, eps, kappa) -> float:
    """``Phi_fgm = {prod sigma (1 + eps/kappa * lip)}^2 sum F^2/sigma^2``.

    Args:
        spectral_norms: ``sigma_i`` per layer.
        frobenius_norms: ``||W_i||_F`` per layer.
        eps: FGM l2 budget, >= 0.
        kappa: lower bound on ``||grad_x loss||_2``, > 0.

    Returns:
        Phi_fgm as a float.

    Raises:
        ValueError: bad norms, ``eps < 0`` or ``kappa <= 0``.

    Reference:
        Farnia et al. 2019, Theorem 2.
    """
    s, f = _norms(spectral_norms, frobenius_norms)
    eps = _positive(eps, "eps", allow_zero=True)
    kappa = _positive(kappa, "kappa")
    lip = lipschitz_gradient_bound(s)
    return float((np.prod(s) * (1 + eps / kappa * lip)) ** 2 * _spread(s, f))


def phi_pgm(
    spectral_norms, frobenius_norms, *, kappa, steps, step_size
) -> float:
    """Theorem 3's ``Phi_pgm`` for r PGM steps of size alpha.

    ``{prod sigma (1 + (alpha/kappa) (1 - q^r)/(1 - q) lip)}^2 sum F^2/sigma^2``
    with ``q = (2 alpha / kappa) lip`` (the geometric sum is ``r`` at
    ``q = 1``).

    Args:
        spectral_norms: ``sigma_i`` per layer.
        frobenius_norms: ``||W_i||_F`` per layer.
        kappa: lower bound on ``||grad_x loss||_2``, > 0.
        steps: number of PGM iterations r, an int >= 1.
        step_size: PGM step alpha, > 0.

    Returns:
        Phi_pgm as a float (may be ``inf`` on overflow when ``q > 1``).

    Raises:
        ValueError: bad norms, kappa, steps or step size.

    Reference:
        Farnia et al. 2019, Theorem 3.
    """
    s, f = _norms(spectral_norms, frobenius_norms)
    kappa = _positive(kappa, "kappa")
    alpha = _positive(step_size, "step_size")
    steps = int(checks.check_integer("steps", steps))
    lip = lipschitz_gradient_bound(s)
    q = 2 * alpha / kappa * lip
    if abs(q - 1.0) < 1e-12:
        geometric = float(steps)
    else:
        with np.errstate(over="ignore"):
            geometric = float((1 - np.float64(q) ** steps) / (1 - q))
    inner = np.prod(s) * (1 + alpha / kappa * geometric * lip)
    with np.errstate(over="ignore"):
        return float(inner**2 * _spread(s, f))


def phi_wrm(spectral_norms, frobenius_norms, *, lam) -> float:
    """``Phi_wrm = {prod sigma (1 + lip/(lambda - lip))}^2 sum F^2/sigma^2``.

    Theorem 4 assumes ``lip < lambda``; otherwise the bound is vacuous and
    ``inf`` is returned.

    Args:
        spectral_norms: ``sigma_i`` per layer.
        frobenius_norms: ``||W_i||_F`` per layer.
        lam: WRM Lagrangian coefficient lambda, > 0.

    Returns:
        Phi_wrm as a float, or ``inf`` when ``lam <= lip``.

    Raises:
        ValueError: bad norms or ``lam <= 0``.

    Reference:
        Farnia et al. 2019, Theorem 4.
    """
    s, f = _norms(spectral_norms, frobenius_norms)
    lam = _positive(lam, "lam")
    lip = lipschitz_gradient_bound(s)
    if lam <= lip:
        return float("inf")
    return float((np.prod(s) * (1 + lip / (lam - lip))) ** 2 * _spread(s, f))


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
    s, f = _norms(spectral_norms, frobenius_norms)
    c = np.ones_like(s) if factors is None else _vector(factors, "factors")
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


# ----------------------------------------------------- per-layer norms


def _weight_layers(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            "`model` must be a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    found = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))
    ]
    if not found:
        raise ValueError("`model` has no Dense or Conv2D layer.")
    return found


def _effective_kernel(layer):
    if hasattr(layer, "normalized_kernel"):
        substituted = override.get_kernel_override(layer)
        if substituted is not None:
            return tf.convert_to_tensor(substituted)
        return layer.normalized_kernel()
    return tf.convert_to_tensor(layer.kernel)


def _conv_input_shape(layer):
    shape = getattr(layer, "_input_hwc", None)
    if shape is None:
        try:
            shape = tuple(layer.input.shape[1:])
        except (AttributeError, ValueError):
            shape = None
    if shape is None or any(v is None for v in shape):
        raise ValueError(
            f"The input shape of conv layer {layer.name!r} is unknown; build "
            "the model with a fixed keras.Input shape."
        )
    return tuple(int(v) for v in shape)


def layer_norms(model, *, iterations: int = DEFAULT_ITERATIONS):
    """Operator spectral norms and Frobenius norms of every weight layer.

    Dense layers: exact largest singular value (SVD, float64). Conv layers:
    the spectral norm of the true convolution operator (stride, padding,
    dilation, the layer's input shape) by ``iterations`` steps of power
    iteration (``layers.spectral.conv_operator_norm``). The effective kernel
    is used for SN layers. The Frobenius norm is that of the kernel.

    Args:
        model: a built ``keras.Model`` (Dense/Conv2D/SNDense/SNConv2D layers
            are used, at any nesting depth, in layer order).
        iterations: power-iteration steps for conv layers.

    Returns:
        ``(spectral, frobenius)``: two float64 NumPy arrays, one entry per
        weight layer.

    Raises:
        ValueError: if the model has no weight layer or a conv input shape
            is unknown.

    Reference:
        Farnia et al. 2019, Theorems 1-4 and App. B.
    """
    sig, frob = [], []
    for layer in _weight_layers(model):
        kernel = _effective_kernel(layer).numpy().astype(np.float64)
        if isinstance(layer, keras.layers.Conv2D):
            sigma = spectral.conv_operator_norm(
                kernel,
                _conv_input_shape(layer),
                strides=tuple(layer.strides),
                padding=layer.padding,
                dilation_rate=tuple(layer.dilation_rate),
                iterations=iterations,
            )
        else:
            sigma = float(np.linalg.svd(kernel, compute_uv=False)[0])
        sig.append(sigma)
        frob.append(float(np.sqrt(np.sum(kernel**2))))
    return np.array(sig), np.array(frob)


def fig3_factors(model) -> np.ndarray:
    """Per-layer factors ``c_i`` of the SN repository's Fig. 3 normalizer.

    ``c_i = H * W * C_in / 4`` for a conv layer (its input shape), ``1`` for a
    dense layer, in the order of :func:`layer_norms`. The repository divides
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
    for layer in _weight_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            factors.append(float(np.prod(_conv_input_shape(layer))) / 4.0)
        else:
            factors.append(1.0)
    return np.array(factors)


def capacity_norm(
    model,
    attack: str = "erm",
    *,
    iterations: int = DEFAULT_ITERATIONS,
    eps=None,
    kappa=None,
    steps=None,
    step_size=None,
    lam=None,
) -> float:
    """Phi of Theorems 1-4 for a Keras model.

    Args:
        model: a built ``keras.Model``.
        attack: ``"erm"``, ``"fgm"``, ``"pgm"`` or ``"wrm"``.
        iterations: power-iteration steps for conv layers.
        eps: FGM budget (``"fgm"``).
        kappa: gradient-norm lower bound (``"fgm"``, ``"pgm"``).
        steps: PGM iterations (``"pgm"``).
        step_size: PGM step (``"pgm"``).
        lam: WRM coefficient (``"wrm"``).

    Returns:
        Phi as a float.

    Raises:
        ValueError: unknown attack or missing/bad parameters.

    Reference:
        Farnia et al. 2019, Theorems 1-4.
    """
    if attack not in ("erm", "fgm", "pgm", "wrm"):
        raise ValueError(
            "`attack` must be 'erm', 'fgm', 'pgm' or 'wrm'. "
            f"Received: attack={attack!r}"
        )
    s, f = layer_norms(model, iterations=iterations)
    if attack == "erm":
        return phi_erm(s, f)
    if attack == "fgm":
        return phi_fgm(s, f, eps=eps, kappa=kappa)
    if attack == "pgm":
        return phi_pgm(s, f, kappa=kappa, steps=steps, step_size=step_size)
    return phi_wrm(s, f, lam=lam)


# ------------------------------------------------ margins and norm gain


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
        phi: a capacity norm from :func:`phi_erm` etc. (> 0), or a
            normalizer from :func:`fig3_normalizer` squared.

    Returns:
        ``(B,)`` normalized margins.

    Raises:
        ValueError: ``phi <= 0`` or bad logits/labels.

    Reference:
        Farnia et al. 2019, Fig. 3.
    """
    phi = _positive(phi, "phi")
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
