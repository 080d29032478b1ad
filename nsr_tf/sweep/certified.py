"""Certified l2 accuracy of a Table 1 run, recorded beside its attacks.

Each Table 1 record gets a ``"certified"`` field: the l2 Lipschitz-margin
certified test accuracy (:func:`nsr_tf.evaluation.certified_accuracy`) at
the row's l2 radius times :data:`EPS_FACTORS`. Rows trained with an l2
attack use their own eps; the others (ERM, WRM, l_inf rows) the dataset's
l2 PGM budget (``0.05 * C2``). Models the certificate cannot bound (LRN,
branches...) record the reason instead of numbers.
"""

from typing import Any

from nsr_tf import evaluation
from nsr_tf.bounds import lipschitz
from nsr_tf.sweep import rows as rows_lib

#: Multiples of the run's l2 eps at which certified accuracy is recorded.
EPS_FACTORS = (0.25, 0.5, 1.0, 2.0)


def run_l2_eps(dataset: str, setting: rows_lib.AttackSetting, c2: float):
    """The l2 radius of a run: its own l2 eps, else the l2 PGM budget."""
    if setting.norm == 2.0 and setting.eps > 0:
        return float(setting.eps)
    return float(rows_lib.attack_setting(dataset, "pgm_l2", c2).eps)


def certified_record(
    model: Any, x: Any, y: Any, eps: float, *, batch_size: int = 500
) -> dict:
    """``{"eps_run", "eps", "accuracy", "lipschitz"}`` or ``{"error"}``.

    Args:
        model: the trained Keras model.
        x: test inputs.
        y: test labels.
        eps: the run's l2 radius.
        batch_size: forward-pass batch size.

    Returns:
        A JSON-ready dict.
    """
    try:
        lip = lipschitz.lipschitz_constant(model)
    except ValueError as err:
        return {"eps_run": eps, "error": str(err)}
    radii = [f * eps for f in EPS_FACTORS]
    acc = evaluation.certified_accuracy(
        model, x, y, eps=radii, batch_size=batch_size, lipschitz_constant=lip
    )
    return {
        "eps_run": eps,
        "eps": radii,
        "accuracy": [float(a) for a in acc],
        "lipschitz": lip,
    }


def at_run_eps(record: dict) -> float | None:
    """Certified accuracy at the run's own eps (None when not recorded)."""
    cert = record.get("certified") or {}
    if "accuracy" not in cert:
        return None
    return cert["accuracy"][EPS_FACTORS.index(1.0)]
