"""Capacity norms Phi of the SN paper (Theorems 1-4), from per-layer norms.

Pure functions of the layers' spectral norms ``sigma_i = ||W_i||_2`` and
Frobenius norms ``F_i = ||W_i||_F`` (no model is read here; see
:mod:`nsr_tf.bounds.model_norms` for that). Farnia et al. bound the
(adversarial) generalization gap by
``O(sqrt(B^2 d^2 h log(dh) Phi + ...) / (gamma sqrt(n)))`` with

* ``Phi_erm = prod sigma_i^2 * sum F_i^2 / sigma_i^2`` (Theorem 1),
* ``Phi_fgm = {prod sigma_i (1 + eps/kappa * lip)}^2 * sum ...`` (Thm 2),
* ``Phi_pgm = {prod sigma_i (1 + alpha/kappa * (1 - q^r) / (1 - q) * lip)}^2
  * sum ...`` with ``q = 2 alpha lip / kappa`` (Theorem 3),
* ``Phi_wrm = {prod sigma_i (1 + lip / (lambda - lip))}^2 * sum ...``
  (Theorem 4),

where ``lip = (prod_i sigma_i) sum_i prod_{j<=i} sigma_j`` bounds the
Lipschitz constant of ``grad_x loss(f(x), y)`` (Theorem 3).

Reference:
    Farnia, Zhang, Tse. Generalizable Adversarial Training via Spectral
    Normalization. ICLR 2019. Theorems 1-4.
"""

import numpy as np

from nsr_tf import checks


def check_positive_values(values, name) -> np.ndarray:
    """``values`` as a flat float64 array; all finite and > 0, at least one.

    Raises:
        ValueError: naming ``name`` for an empty list or a bad value.
    """
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"`{name}` must be a non-empty list of finite values > 0. "
            f"Received: {name}={values!r}"
        )
    return arr


def check_norms(spectral_norms, frobenius_norms):
    """Both norm lists as float64 arrays of one entry per layer.

    Raises:
        ValueError: for a bad value or lists of different lengths.
    """
    s = check_positive_values(spectral_norms, "spectral_norms")
    f = check_positive_values(frobenius_norms, "frobenius_norms")
    if s.shape != f.shape:
        raise ValueError(
            "`spectral_norms` and `frobenius_norms` must have one entry per "
            f"layer. Received: {s.size} and {f.size} entries"
        )
    return s, f


def check_positive(value, name, allow_zero=False) -> float:
    """A finite real number > 0 (``>= 0`` with ``allow_zero``) as a float.

    Raises:
        ValueError: naming ``name`` and echoing ``value`` otherwise.
    """
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
    s = check_positive_values(spectral_norms, "spectral_norms")
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
    s, f = check_norms(spectral_norms, frobenius_norms)
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
    s, f = check_norms(spectral_norms, frobenius_norms)
    eps = check_positive(eps, "eps", allow_zero=True)
    kappa = check_positive(kappa, "kappa")
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
    s, f = check_norms(spectral_norms, frobenius_norms)
    kappa = check_positive(kappa, "kappa")
    alpha = check_positive(step_size, "step_size")
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
    s, f = check_norms(spectral_norms, frobenius_norms)
    lam = check_positive(lam, "lam")
    lip = lipschitz_gradient_bound(s)
    if lam <= lip:
        return float("inf")
    return float((np.prod(s) * (1 + lip / (lam - lip))) ** 2 * _spread(s, f))
