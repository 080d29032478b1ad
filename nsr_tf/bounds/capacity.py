"""Capacity norm Phi of a Keras model (SN paper, Theorems 1-4).

Joins the two halves: :mod:`nsr_tf.bounds.model_norms` reads the per-layer
spectral and Frobenius norms of a model, and :mod:`nsr_tf.bounds.phi` turns
them into the Phi of the training attack. The attack is chosen by data: a
table from the attack name to its Phi function and the parameters it takes.

Reference:
    Farnia, Zhang, Tse. Generalizable Adversarial Training via Spectral
    Normalization. ICLR 2019. Theorems 1-4.
"""

from nsr_tf.bounds import model_norms
from nsr_tf.bounds import phi

#: Attack -> (Phi function of the per-layer norms, its keyword parameters).
PHI_OF_ATTACK = {
    "erm": (phi.phi_erm, ()),
    "fgm": (phi.phi_fgm, ("eps", "kappa")),
    "pgm": (phi.phi_pgm, ("kappa", "steps", "step_size")),
    "wrm": (phi.phi_wrm, ("lam",)),
}


def capacity_norm(
    model,
    attack: str = "erm",
    *,
    iterations: int = model_norms.DEFAULT_ITERATIONS,
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
    if attack not in PHI_OF_ATTACK:
        raise ValueError(
            "`attack` must be 'erm', 'fgm', 'pgm' or 'wrm'. "
            f"Received: attack={attack!r}"
        )
    phi_fn, names = PHI_OF_ATTACK[attack]
    given = {
        "eps": eps,
        "kappa": kappa,
        "steps": steps,
        "step_size": step_size,
        "lam": lam,
    }
    s, f = model_norms.layer_norms(model, iterations=iterations)
    return phi_fn(s, f, **{name: given[name] for name in names})
