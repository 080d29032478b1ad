"""Budgets of a sweep: the paper's settings and short CPU presets."""

from __future__ import annotations

import dataclasses

OPTIMIZERS = ("adam", "momentum")


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


PRESETS = {
    # The spec's settings (sn_paper.md §5): up to 200 epochs, batch 128,
    # early stopping, every example, the row's beta grid.
    "paper": Preset("paper", epochs=200),
    # What 2 CPU cores allow for the 72 MNIST runs in about an hour: every
    # beta of the grid, but one epoch on the first 20,000 training examples
    # instead of up to 200 epochs on all, and train/test accuracy on the
    # first 2,000 examples of each (validation: all 500).
    "cpu": Preset("cpu", epochs=1, train_examples=20000, eval_examples=2000),
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
