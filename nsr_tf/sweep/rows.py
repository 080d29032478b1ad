"""Table 1 of the SN paper as data: rows, attacks, optimizers, beta grids.

Every number here comes from spec ``sn_paper.md`` §4-§7 (the authors'
notebooks and training template); nothing is tuned toward the paper's
accuracies.
"""

from __future__ import annotations

import dataclasses
import math

from nsr_tf import reference

INF = math.inf
# The training template's grid (spec §5) ...
TEMPLATE_GRID = (INF, 1.0, 1.3, 1.6, 2.0, 4.0)
# ... extended, where the paper's selected beta lies outside it (spec §5,
# §12.7), by the smallest set of values that contains the reported winner.
ROW_GRIDS = {
    ("cifar10", "mlp1"): (INF, 0.8, 1.0, 1.3, 1.6, 2.0, 4.0),
    ("cifar10", "mlp2"): (INF, 0.8, 1.0, 1.3, 1.6, 2.0, 4.0),
    ("cifar10", "resnet"): (INF, 1.0, 1.3, 1.6, 2.0, 2.5, 4.0),
}
MNIST_GRID = (INF, 1.0, 2.0, 4.0, 8.0, 16.0)

TRAININGS = ("erm", "fgm_l2", "fgm_linf", "pgm_l2", "pgm_linf", "wrm")
ARCH_LABELS = {
    "alexnet": "AlexNet",
    "elu_alexnet": "ELU-AlexNet",
    "inception": "Inception",
    "mlp1": "1-layer MLP",
    "mlp2": "2-layer MLP",
    "resnet": "ResNet",
    "elunet": "ELU-Net",
}
TRAINING_LABELS = {
    "erm": "ERM",
    "fgm_l2": "FGM l2",
    "fgm_linf": "FGM linf",
    "pgm_l2": "PGM l2",
    "pgm_linf": "PGM linf",
    "wrm": "WRM",
}
INPUT_SHAPES = {
    "mnist": (28, 28, 1),
    "cifar10": (28, 28, 3),
    "svhn": (28, 28, 3),
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One Table 1 row: a dataset, an architecture and a training scheme."""

    dataset: str
    arch: str
    training: str

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.arch}/{self.training}"

    @property
    def optimizer(self) -> str:
        """``"adam"`` (MNIST, CIFAR MLPs) or ``"momentum"`` (spec §5)."""
        if self.dataset == "mnist" or self.arch in ("mlp1", "mlp2"):
            return "adam"
        return "momentum"

    @property
    def beta_grid(self) -> tuple[float, ...]:
        if self.dataset == "mnist":
            return MNIST_GRID
        return ROW_GRIDS.get((self.dataset, self.arch), TEMPLATE_GRID)

    @property
    def max_epochs(self) -> int | None:
        """MNIST ELU-Net is evaluated at its epoch-25 checkpoint (spec §5)."""
        return 25 if self.arch == "elunet" else None


def paper_beta(row: Row) -> float:
    """The beta the paper's validation selected for ``row`` (Table 1)."""
    for ref in reference.table1_rows(row.dataset):
        if (ref["arch"], ref["training"]) == (row.arch, row.training):
            selected = ref["selected_beta"]
            return INF if selected == "inf" else float(selected)
    raise ValueError(f"`row` is not a Table 1 row. Received: row={row.key}")


def row_betas(row: Row, rule: str) -> tuple[float, ...]:
    """The betas of ``row`` that a preset's rule picks (``BETA_RULES``).

    ``"grid"``: the row's whole grid. ``"paper_neighbour"``: infinity, the
    paper's selected beta and its neighbour in the grid (the next smaller
    finite value, else the next larger one; the largest finite value when
    the paper selected infinity), in grid order.
    """
    grid = row.beta_grid
    if rule == "grid":
        return grid
    chosen = paper_beta(row)
    finite = sorted(b for b in grid if not math.isinf(b))
    picked = {INF, chosen}
    if math.isinf(chosen):
        picked.add(finite[-1])
    else:
        i = finite.index(chosen)
        picked.add(finite[i - 1] if i > 0 else finite[min(1, len(finite) - 1)])
    return tuple(b for b in grid if b in picked)


def table1_rows(dataset: str) -> list[Row]:
    """The Table 1 rows of ``dataset`` in the paper's order."""
    return [
        Row(r["dataset"], r["arch"], r["training"])
        for r in reference.table1_rows(dataset)
    ]


@dataclasses.dataclass(frozen=True)
class AttackSetting:
    """The attack of a training scheme, with its budget already resolved."""

    mode: str  # "erm", "fgm", "pgm" or "wrm" (RobustConfig modes)
    norm: float = 2.0
    eps: float = 0.0
    gamma: float = 0.0
    steps: int = 15
    step_size: float | None = None  # PGM step; None: 2 eps / steps

    def attack_call(self) -> tuple:
        """``(attack_fn, kwargs)`` of ``nsr_tf.attacks`` (None for ERM)."""
        from nsr_tf import attacks

        if self.mode == "erm":
            return None, {}
        if self.mode == "wrm":
            return attacks.wrm, {"gamma": self.gamma, "steps": self.steps}
        if self.mode == "fgm":
            return attacks.fgm, {"eps": self.eps, "norm": self.norm}
        size = self.step_size
        return attacks.pgd, {
            "eps": self.eps,
            "norm": self.norm,
            "steps": self.steps,
            "step_size": 2 * self.eps / self.steps if size is None else size,
        }

    @property
    def gradient_passes(self) -> int:
        """Forward-backward passes of one training step: the attack's and
        the weight update's (what a run's cost scales with)."""
        return {"erm": 1, "fgm": 2}.get(self.mode, self.steps + 1)

    def as_config_kwargs(self) -> dict:
        if self.mode == "erm":
            return {"mode": "erm"}
        if self.mode == "wrm":
            return {"mode": "wrm", "gamma": self.gamma, "steps": self.steps}
        kwargs = {"mode": self.mode, "norm": self.norm, "eps": self.eps}
        if self.mode == "pgm":
            kwargs["steps"] = self.steps
        return kwargs


def attack_setting(dataset: str, training: str, c2: float) -> AttackSetting:
    """The SN paper's budget for ``training`` on ``dataset`` (spec §4).

    l2 attacks use eps = 0.05 * C2; l-inf attacks eps = 0.1 in standardized
    units; WRM gamma = 0.002 * C2 (CIFAR-10, SVHN) or 0.04 * C2 (MNIST).
    PGM runs 15 steps of size 2 eps / 15, WRM 15 steps after its first.
    """
    if training == "erm":
        return AttackSetting("erm")
    if training == "wrm":
        factor = 0.04 if dataset == "mnist" else 0.002
        return AttackSetting("wrm", gamma=factor * c2)
    kind, norm_name = training.split("_")
    norm = 2.0 if norm_name == "l2" else INF
    eps = 0.05 * c2 if norm == 2.0 else 0.1
    return AttackSetting(kind, norm=norm, eps=eps)


def format_beta(beta: float) -> str:
    return "inf" if math.isinf(beta) else f"{beta:g}"


def parse_beta(text: str) -> float:
    text = text.strip().lower()
    if text in ("inf", "infinity", "∞"):
        return INF
    value = float(text)
    if not value > 0:
        raise ValueError(f"A beta must be > 0. Received: beta={text}")
    return value
