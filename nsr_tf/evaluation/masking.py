"""Gradient-masking screens (after AutoAttack's sanity checks).

Four screens whose failure suggests the measured robustness is an artefact
of uninformative gradients rather than real robustness:

1. ``monotone``: accuracy under PGD does not rise with eps;
2. ``pgd_beats_fgm``: PGD is at least as strong as FGM at every eps;
3. ``unbounded``: an (effectively) unbounded eps drives accuracy to ~0;
4. ``nonzero_gradients``: no example has an all-zero input gradient.

Reference:
    Croce and Hein, "Reliable evaluation of adversarial robustness with an
    ensemble of diverse parameter-free attacks", ICML 2020 (the checks of
    AutoAttack's ``checks.py``); Athalye, Carlini and Wagner, ICML 2018.
"""

import dataclasses
from typing import Any

import numpy as np

from nsr_tf import checks
from nsr_tf import model_adapter
from nsr_tf.attacks import _args
from nsr_tf.attacks import _steps
from nsr_tf.attacks.fgm import fgm
from nsr_tf.attacks.pgd import pgd
from nsr_tf.evaluation.robust_accuracy import robust_accuracy


@dataclasses.dataclass(frozen=True)
class Screen:
    """The outcome of one screen: ``passed`` and a human-readable detail."""

    name: str
    passed: bool
    detail: str


@dataclasses.dataclass(frozen=True)
class MaskingReport:
    """All screens plus the numbers they were computed from."""

    eps_grid: tuple
    fgm_accuracy: tuple
    pgd_accuracy: tuple
    unbounded_accuracy: float
    zero_gradient_fraction: float
    screens: tuple

    @property
    def passed(self) -> bool:
        """True when no screen fired."""
        return all(s.passed for s in self.screens)

    @property
    def failures(self) -> list[str]:
        """Names of the screens that fired."""
        return [s.name for s in self.screens if not s.passed]

    def __str__(self) -> str:
        lines = [
            f"gradient-masking screens: {'PASS' if self.passed else 'FAIL'}"
        ]
        for s in self.screens:
            lines.append(
                f"  [{'ok' if s.passed else 'FIRED'}] {s.name}: {s.detail}"
            )
        return "\n".join(lines)


def _zero_gradient_fraction(model_fn, x, y, batch_size) -> float:
    fn = model_adapter.logits_fn(model_fn)
    zero = 0
    for s in range(0, len(x), batch_size):
        xb = _args.as_input(x[s : s + batch_size])
        yb = checks.class_indices(y[s : s + batch_size], keep_one_hot=True)
        loss = _steps.softmax_cross_entropy
        g = _steps.input_gradient(fn, xb, yb, loss).numpy()
        flat = np.abs(g.reshape(len(g), -1)).max(axis=1)
        zero += int(np.sum(flat == 0))
    return zero / len(x)


def gradient_masking_report(
    model_fn: Any,
    x: Any,
    y: Any,
    *,
    eps_grid: Any,
    norm: Any = np.inf,
    steps: int = 20,
    unbounded_eps: float = 1e4,
    clip_min: Any = None,
    clip_max: Any = None,
    batch_size: int = 256,
    tol: float = 0.01,
    unbounded_max_accuracy: float = 0.05,
) -> MaskingReport:
    """Runs the four screens and returns a report (never raises on a fire).

    PGD uses ``steps`` steps of ``2.5 * eps / steps`` (Madry et al.'s
    heuristic) and true labels; FGM uses true labels.

    Args:
        model_fn: callable ``x -> logits``, Keras model or SavedModel.
        x: inputs (a few hundred examples suffice).
        y: true integer labels.
        eps_grid: increasing budgets (>= 2 values, all > 0).
        norm: 2 or ``np.inf``.
        steps: PGD steps.
        unbounded_eps: the "unbounded" budget (clipping to the data range
            still applies when ``clip_min``/``clip_max`` are given).
        clip_min: optional lower data bound.
        clip_max: optional upper data bound.
        batch_size: evaluation batch size.
        tol: slack (absolute accuracy) of the monotone and PGD-vs-FGM
            screens.
        unbounded_max_accuracy: the unbounded screen fires above this.

    Returns:
        A ``MaskingReport``; ``report.passed`` / ``report.failures``.

    Raises:
        ValueError: bad ``eps_grid``, ``norm`` or ``steps``.
    """
    norm = checks.parse_norm(norm)
    checks.check_integer("steps", steps)
    grid = np.asarray(eps_grid, dtype=np.float64)
    if (
        grid.ndim != 1
        or len(grid) < 2
        or np.any(np.diff(grid) <= 0)
        or (grid[0] <= 0)
    ):
        raise ValueError(
            "`eps_grid` must be 1-D, strictly increasing, >= 2 values > 0. "
            f"Received: eps_grid={list(np.ravel(grid))}"
        )
    x = np.asarray(x)
    y = np.asarray(y)
    common = dict(
        batch_size=batch_size, progress=False, attack_labels="true",
        clip_min=clip_min, clip_max=clip_max,
    )  # fmt: skip

    def pgd_acc(eps):
        return robust_accuracy(
            model_fn, (x, y), pgd, eps=float(eps), norm=norm, steps=steps,
            step_size=2.5 * float(eps) / steps, **common,
        )  # fmt: skip

    fgm_acc = [
        robust_accuracy(
            model_fn, (x, y), fgm, eps=float(e), norm=norm, **common
        )
        for e in grid
    ]
    pgd_accs = [pgd_acc(e) for e in grid]
    unbounded = pgd_acc(unbounded_eps)
    zero_frac = _zero_gradient_fraction(model_fn, x, y, batch_size)

    rises = [
        (float(grid[i]), float(grid[i + 1]))
        for i in range(len(grid) - 1)
        if pgd_accs[i + 1] > pgd_accs[i] + tol
    ]
    weaker = [
        float(e) for e, p, f in zip(grid, pgd_accs, fgm_acc, strict=True)
        if p > f + tol
    ]  # fmt: skip
    screens = (
        Screen(
            "monotone",
            not rises,
            f"PGD accuracy {np.round(pgd_accs, 4).tolist()} over eps "
            f"{grid.tolist()}" + (f"; rises between {rises}" if rises else ""),
        ),
        Screen(
            "pgd_beats_fgm",
            not weaker,
            f"FGM accuracy {np.round(fgm_acc, 4).tolist()}"
            + (f"; PGD weaker at eps {weaker}" if weaker else ""),
        ),
        Screen(
            "unbounded",
            unbounded <= unbounded_max_accuracy,
            f"accuracy {unbounded:.4f} at eps={unbounded_eps:g} "
            f"(limit {unbounded_max_accuracy})",
        ),
        Screen(
            "nonzero_gradients",
            zero_frac == 0,
            f"{zero_frac:.2%} of examples have an all-zero input gradient",
        ),
    )
    return MaskingReport(
        eps_grid=tuple(grid.tolist()),
        fgm_accuracy=tuple(fgm_acc),
        pgd_accuracy=tuple(pgd_accs),
        unbounded_accuracy=float(unbounded),
        zero_gradient_fraction=float(zero_frac),
        screens=screens,
    )


__all__ = ["MaskingReport", "Screen", "gradient_masking_report"]
