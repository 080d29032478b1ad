"""Robust accuracy of an exported SavedModel under any of our attacks."""

from __future__ import annotations

import math

import numpy as np

from nsr_tf.sweep import rows as rows_lib

ATTACKS = ("none", "fgm", "pgd", "wrm", "joint")


def evaluate_saved_model(
    directory: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    attack: str,
    eps: float = 0.0,
    norm: float = 2.0,
    steps: int = 15,
    step_size: float | None = None,
    gamma: float = 1.0,
    labels: str = "predicted",
    loss: str = "cross_entropy",
    eps_x_grid=(0.0, 0.1),
    eps_w_grid=(0.0, 0.001),
    step_size_x: float = 0.01,
    step_size_w: float = 0.0005,
    batch_size: int = 500,
    surface_png: str | None = None,
) -> dict:
    """Loads an attack-ready SavedModel and attacks it.

    Input attacks report ``accuracy``; ``attack="joint"`` reports the
    accuracy surface over ``eps_x_grid`` x ``eps_w_grid`` and its AUC (and
    writes a contour PNG when ``surface_png`` is given). ``loss`` names
    the input attacks' loss in ``nsr_tf.attacks.LOSSES`` (the joint attack
    uses cross-entropy).

    Raises:
        ValueError: for an unknown attack or loss name.
    """
    from nsr_tf import attacks
    from nsr_tf import evaluation
    from nsr_tf import export

    if attack not in ATTACKS:
        raise ValueError(
            f"`attack` must be one of {ATTACKS}. Received: attack={attack!r}"
        )
    if loss not in attacks.LOSSES:
        raise ValueError(
            f"`loss` must be one of {tuple(attacks.LOSSES)}. "
            f"Received: loss={loss!r}"
        )
    model = export.load_attack_ready(directory)
    if attack == "joint":
        acc, auc = evaluation.accuracy_surface(
            model,
            x,
            y,
            eps_x_grid,
            eps_w_grid,
            batch_size=batch_size,
            steps=steps,
            step_size_x=step_size_x,
            step_size_w=step_size_w,
        )
        if surface_png:
            evaluation.plot_surface(
                acc, eps_x_grid, eps_w_grid, surface_png, title=f"AUC {auc:.3f}"
            )
        return {
            "attack": attack,
            "eps_x_grid": list(eps_x_grid),
            "eps_w_grid": list(eps_w_grid),
            "accuracy": np.asarray(acc).tolist(),
            "auc": float(auc),
        }
    mode = {"none": "erm", "pgd": "pgm"}.get(attack, attack)
    fn, kwargs = rows_lib.AttackSetting(
        mode, norm=norm, eps=eps, gamma=gamma, steps=steps, step_size=step_size
    ).attack_call()
    loss_kwargs = {} if fn is None else {"loss_fn": attacks.LOSSES[loss]}
    accuracy = evaluation.robust_accuracy(
        model,
        (x, y),
        fn,
        batch_size=batch_size,
        progress=True,
        attack_labels=labels,
        **kwargs,
        **loss_kwargs,
    )
    return {
        "attack": attack,
        **{
            k: (v if not isinstance(v, float) or math.isfinite(v) else "inf")
            for k, v in kwargs.items()
        },
        "labels": labels,
        "loss": loss,
        "accuracy": float(accuracy),
    }
