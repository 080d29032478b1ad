"""Budgets of a sweep: the paper's settings and short CPU presets."""

from __future__ import annotations

import dataclasses

OPTIMIZERS = ("adam", "momentum")
#: How a preset picks the betas of a row: its whole grid, or infinity, the
#: paper's selected beta and that beta's neighbour in the grid (the next
#: smaller value, or the next larger one when the paper's is the smallest).
BETA_RULES = ("grid", "paper_neighbour")


@dataclasses.dataclass(frozen=True)
class Preset:
    """How long and on how much data each run trains and is evaluated.

    Attributes:
        name: preset name.
        epochs: maximum epochs per run.
        batch_size: training batch size (last partial batch dropped).
        train_examples: training examples used (None: all).
        eval_examples: examples of the train and test sets used for the
            reported accuracies (None: all; validation always has 500).
        early_stopping: stop once the mean training accuracy of the last 5
            epochs reaches 0.999 (SN paper).
        betas: beta grid overriding every row's (None: the row's grid).
        optimizer: ``"adam"`` or ``"momentum"`` for every row (None: the
            row's optimizer, spec §5).
        learning_rate: learning rate for every row (None: the optimizer's
            paper value, 1e-3 for Adam and 0.01 for momentum).
        archs: only the rows of these architectures (None: every row).
        epochs_by_training: ``(training, max_epochs)`` pairs, tighter caps
            than ``epochs`` for some training schemes.
        betas_by_training: ``(training, rule)`` pairs, a rule of
            :data:`BETA_RULES` for some training schemes (default "grid";
            an explicit ``betas`` overrides every rule).
        jit_compile: compile each training step with XLA (measured about
            0.73x the step time of the plain graph on 2 CPU cores for the
            MNIST MLPs, see BUILD.md); recorded in each run.
    """

    name: str
    epochs: int
    batch_size: int = 128
    train_examples: int | None = None
    eval_examples: int | None = None
    early_stopping: bool = True
    betas: tuple[float, ...] | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    archs: tuple[str, ...] | None = None
    epochs_by_training: tuple[tuple[str, int], ...] = ()
    betas_by_training: tuple[tuple[str, str], ...] = ()
    jit_compile: bool = False

    def __post_init__(self):
        if self.optimizer not in (None, *OPTIMIZERS):
            raise ValueError(
                f"`optimizer` must be one of {OPTIMIZERS} or None. "
                f"Received: optimizer={self.optimizer!r}"
            )
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(
                "`learning_rate` must be > 0. "
                f"Received: learning_rate={self.learning_rate!r}"
            )
        for training, rule in self.betas_by_training:
            if rule not in BETA_RULES:
                raise ValueError(
                    f"`betas_by_training` rules must be one of {BETA_RULES}. "
                    f"Received: {training}={rule!r}"
                )
        for training, cap in self.epochs_by_training:
            if isinstance(cap, bool) or int(cap) != cap or cap < 1:
                raise ValueError(
                    "`epochs_by_training` caps must be integers >= 1. "
                    f"Received: {training}={cap!r}"
                )

    def epochs_for(self, training: str) -> int:
        """Maximum epochs of a run of ``training`` (the tighter cap)."""
        return min(
            self.epochs,
            dict(self.epochs_by_training).get(training, self.epochs),
        )

    def beta_rule_for(self, training: str) -> str:
        """The :data:`BETA_RULES` entry that picks ``training``'s betas."""
        return dict(self.betas_by_training).get(training, "grid")


PRESETS = {
    # The spec's settings (sn_paper.md §5): up to 200 epochs, batch 128,
    # early stopping, every example, the row's beta grid.
    "paper": Preset("paper", epochs=200),
    # What 2 CPU cores allow for the 72 MNIST runs in about an hour: every
    # beta of the grid, but one epoch on the first 20,000 training examples
    # instead of up to 200 epochs on all, and train/test accuracy on the
    # first 2,000 examples of each (validation: all 500).
    "cpu": Preset("cpu", epochs=1, train_examples=20000, eval_examples=2000),
    # The paper's protocol for the MLP rows of MNIST and CIFAR-10 at a
    # budget 2 CPU cores allow (about 9 hours): all training examples,
    # batch 128, Adam 1e-3, the paper's early stopping;
    # ERM up to 200 epochs and FGM up to 30 on the full beta grid; PGM and
    # WRM (15 attack steps each, about 10x an FGM step) up to 20 epochs on
    # infinity, the paper's beta and one neighbour; XLA-compiled steps.
    "mlp": Preset(
        "mlp",
        epochs=200,
        archs=("mlp1", "mlp2"),
        epochs_by_training=(("fgm_l2", 30), ("pgm_l2", 20), ("wrm", 20)),
        betas_by_training=(
            ("pgm_l2", "paper_neighbour"),
            ("wrm", "paper_neighbour"),
        ),
        jit_compile=True,
    ),
    # The MNIST ELU-Net rows at the paper's protocol: 25 epochs (the
    # paper evaluates ELU-Net at its epoch-25 checkpoint), every other
    # setting the ``mlp`` preset's, except XLA: on 2 CPU cores an
    # XLA-compiled ELU-Net step takes about 14x the plain graph's
    # (BUILD.md), so its steps run as graphs.
    "elunet": Preset(
        "elunet",
        epochs=25,
        archs=("elunet",),
        betas_by_training=(
            ("pgm_l2", "paper_neighbour"),
            ("wrm", "paper_neighbour"),
        ),
    ),
    # Figs. 3-4 (random labels) for the 1-layer MLP on a 2-CPU budget at
    # which the unconstrained network fits most of its random labels: the
    # first 5,000 training examples (train accuracy on all of them, test on
    # the first 5,000), up to 200 epochs (100 for the 15-step attacks) with
    # the paper's early stopping, beta in {inf, 2, 1}. The same preset
    # trains the true-label runs that Fig. 3 compares with.
    "fig34": Preset(
        "fig34",
        epochs=200,
        train_examples=5000,
        eval_examples=5000,
        betas=(float("inf"), 2.0, 1.0),
        archs=("mlp1",),
        epochs_by_training=(("pgm_l2", 100), ("wrm", 100)),
        jit_compile=True,
    ),
    # Minutes on 2 CPU cores: one epoch on 2,048 examples, beta in {inf, 2}.
    "smoke": Preset(
        "smoke",
        epochs=1,
        train_examples=2048,
        eval_examples=1000,
        early_stopping=False,
        betas=(float("inf"), 2.0),
    ),
}


def get_preset(name: str, **overrides) -> Preset:
    """A preset by name, with any field replaced (``None`` keeps it)."""
    if name not in PRESETS:
        raise ValueError(
            f"`preset` must be one of {tuple(PRESETS)}. "
            f"Received: preset={name!r}"
        )
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(PRESETS[name], **changes)
