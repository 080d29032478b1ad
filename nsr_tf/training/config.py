"""RobustConfig: the one serializable object that sets a robust training mode.

Modes (SN paper = Farnia, Zhang and Tse, ICLR 2019; NSR paper = Tsai, Hsu,
Yu and Chen, ICASSP 2021):

========================  =====================================================
``erm``                   plain cross-entropy on clean inputs.
``fgm``, ``pgm``, ``wrm``  SN paper §4-5: cross-entropy on adversarial examples
                          only (no clean mix), attacked from the model's own
                          predictions by default.
``weight_perturb``        NSR eq. 23 on clean inputs: CE + alpha max tau +
                          beta max zeta (paper: alpha = beta = 0.25,
                          eps_x = 0, eps_w = 0.01).
``at``                    Madry PGD training (NSR Fig. 1c), no penalty.
``at_beta``               NSR eq. 23 on PGD inputs: adversarial CE + alpha max
                          tau + beta max zeta (Fig. 1d/e, alpha = 0).
``jiwp``                  NSR eq. 23 on clean inputs with both penalties
                          (Fig. 1f: alpha = beta = 0.02, eps_w = 0.02,
                          eps_x = 0.3).
``joint_at``              in-loop joint input-weight perturbation: a few
                          ``joint_pgd`` steps, then the gradient at the
                          perturbed point is applied to the clean weights.
========================  =====================================================
"""

import dataclasses
import math
from typing import Any

from nsr_tf import checks
from nsr_tf.bounds import margin

#: Every training mode.
MODES = (
    "erm",
    "fgm",
    "pgm",
    "wrm",
    "weight_perturb",
    "at",
    "at_beta",
    "jiwp",
    "joint_at",
)
#: Modes that train on input adversarial examples from an input attack.
INPUT_ATTACK_MODES = ("fgm", "pgm", "wrm", "at", "at_beta")
#: Modes whose loss carries the NSR margin penalty (eq. 23).
PENALTY_MODES = ("weight_perturb", "at_beta", "jiwp")
#: Bound variants understood by ``nsr_tf.bounds``.
VARIANTS = margin.VARIANTS
LABELS = ("predicted", "true")
PENALTY_INPUTS = ("clean", "adversarial")

_DEFAULT_STEPS = {"pgm": 15, "wrm": 15, "at": 10, "at_beta": 10, "joint_at": 5}


@dataclasses.dataclass(frozen=True)
class RobustConfig:
    """How ``RobustModel.train_step`` makes its training robust.

    Unset fields (``None``) are resolved per mode at construction, so the
    stored config is always complete and explicit.

    Args:
        mode: one of :data:`MODES`.
        norm: 2 or ``inf`` (also "l2"/"linf"): the input attack's norm.
            Default 2 for ``fgm``/``pgm`` and ``inf`` for ``at``/``at_beta``/
            ``joint_at`` (the joint attack uses sign steps, so only ``inf``).
        eps: input attack radius (``fgm``, ``pgm``, ``at``, ``at_beta``).
            Required there. SN paper: 0.05 * C2 for l2.
        steps: attack iterations (default: pgm/wrm 15, at 10, joint_at 5).
        step_size: attack step; default 2 * eps / steps (SN paper §4), for
            ``joint_at`` 2 * eps_x / steps.
        step_size_w: ``joint_at`` weight step, default 2 * eps_w / steps.
        gamma: WRM penalty coefficient (> 0), e.g. 0.04 * C2 on MNIST;
            required for ``wrm``.
        labels: "predicted" (attack the model's own argmax, the SN paper's
            convention) or "true". Default "predicted" for the SN modes and
            "true" for ``at``/``at_beta``/``joint_at`` (Madry).
        rand_init: random start for PGD (``pgm``/``at``/``at_beta``).
        clip_min, clip_max: optional data range for adversarial inputs.
        alpha: weight of max tau in eq. 23 (>= 0).
        beta: weight of max zeta in eq. 23 (>= 0).
        eps_x: input radius used by the tau/zeta bounds and by ``joint_at``;
            default: ``eps`` when set, else 0.
        eps_w: element-wise absolute weight radius of the bounds and of
            ``joint_at`` (>= 0).
        variant: bound variant, one of :data:`VARIANTS` (default "sound").
        penalty_input: evaluate zeta at the "clean" (default, as Lemma 1
            bounds f_W'(x) - f_W(x)) or the "adversarial" input.

    Raises:
        ValueError: naming the field and echoing the value, for an unknown
            mode/norm/labels/variant, a negative radius or coefficient, a
            missing required field, or an inconsistent combination.

    Reference:
        SN paper §4-5 (spec sn_paper.md §4-5); NSR paper eq. 23 and §4.1
        (spec nsr_paper.md §2.4-2.5).
    """

    mode: str = "erm"
    norm: Any = None
    eps: float | None = None
    steps: int | None = None
    step_size: float | None = None
    step_size_w: float | None = None
    gamma: float | None = None
    labels: str | None = None
    rand_init: bool = False
    clip_min: float | None = None
    clip_max: float | None = None
    alpha: float = 0.0
    beta: float = 0.0
    eps_x: float | None = None
    eps_w: float = 0.0
    variant: str = "sound"
    penalty_input: str = "clean"

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        mode = self.mode
        if mode not in MODES:
            raise ValueError(
                f"`mode` must be one of {MODES}. Received: mode={mode!r}"
            )
        # norm
        default_norm = (
            math.inf if mode in ("at", "at_beta", "joint_at") else 2.0
        )
        norm = (
            default_norm if self.norm is None else checks.parse_norm(self.norm)
        )
        if mode == "joint_at" and norm != math.inf:
            raise ValueError(
                "`norm` must be inf for mode='joint_at' (the joint attack "
                f"takes sign steps). Received: norm={self.norm!r}"
            )
        put("norm", norm)
        # radii and coefficients
        for name in ("eps", "step_size", "step_size_w", "eps_x", "gamma"):
            value = getattr(self, name)
            put(name, checks.check_nonnegative(name, value, allow_none=True))
        for name in ("alpha", "beta", "eps_w"):
            put(name, checks.check_nonnegative(name, getattr(self, name)))
        if self.eps is None and mode in ("fgm", "pgm", "at", "at_beta"):
            raise ValueError(
                f"`eps` must be set for mode={mode!r}. Received: eps=None"
            )
        if mode == "wrm" and not (self.gamma or 0) > 0:
            raise ValueError(
                "`gamma` must be > 0 for mode='wrm'. "
                f"Received: gamma={self.gamma!r}"
            )
        if self.eps_x is None:
            put("eps_x", self.eps if self.eps is not None else 0.0)
        # steps
        steps = self.steps
        if steps is None:
            steps = _DEFAULT_STEPS.get(mode, 1)
        if isinstance(steps, bool) or int(steps) != steps or steps < 1:
            raise ValueError(
                f"`steps` must be an integer >= 1. Received: steps={steps!r}"
            )
        put("steps", int(steps))
        if self.step_size is None:
            radius = self.eps_x if mode == "joint_at" else (self.eps or 0.0)
            put("step_size", 2.0 * radius / self.steps)
        if self.step_size_w is None:
            put("step_size_w", 2.0 * self.eps_w / self.steps)
        # labels
        labels = self.labels
        if labels is None:
            labels = (
                "true"
                if mode in ("at", "at_beta", "joint_at")
                else ("predicted")
            )
        if labels not in LABELS:
            raise ValueError(
                f"`labels` must be one of {LABELS}. Received: labels={labels!r}"
            )
        put("labels", labels)
        if self.variant not in VARIANTS:
            raise ValueError(
                f"`variant` must be one of {VARIANTS}. "
                f"Received: variant={self.variant!r}"
            )
        if self.penalty_input not in PENALTY_INPUTS:
            raise ValueError(
                f"`penalty_input` must be one of {PENALTY_INPUTS}. "
                f"Received: penalty_input={self.penalty_input!r}"
            )
        if self.penalty_input == "adversarial" and mode != "at_beta":
            raise ValueError(
                "`penalty_input='adversarial'` needs mode='at_beta'. "
                f"Received: mode={mode!r}"
            )
        put("rand_init", bool(self.rand_init))
        for name in ("clip_min", "clip_max"):
            value = getattr(self, name)
            if value is not None:
                put(name, float(value))
        if (
            self.clip_min is not None
            and self.clip_max is not None
            and self.clip_min > self.clip_max
        ):
            raise ValueError(
                "`clip_min` must be <= `clip_max`. Received: "
                f"clip_min={self.clip_min}, clip_max={self.clip_max}"
            )
        # mode consistency
        if mode not in PENALTY_MODES and (self.alpha or self.beta):
            raise ValueError(
                f"`alpha` and `beta` must be 0 for mode={mode!r} (use "
                "'at_beta', 'weight_perturb' or 'jiwp' for the eq. 23 "
                f"penalty). Received: alpha={self.alpha}, beta={self.beta}"
            )
        if mode == "joint_at" and not (self.eps_x > 0 or self.eps_w > 0):
            raise ValueError(
                "`eps_x` or `eps_w` must be > 0 for mode='joint_at'. "
                f"Received: eps_x={self.eps_x}, eps_w={self.eps_w}"
            )

    @property
    def uses_input_attack(self) -> bool:
        """True when each step trains on input adversarial examples."""
        return self.mode in INPUT_ATTACK_MODES

    @property
    def uses_penalty(self) -> bool:
        """True when the loss carries a nonzero eq. 23 penalty."""
        return self.mode in PENALTY_MODES and (self.alpha > 0 or self.beta > 0)

    @property
    def uses_bounds(self) -> bool:
        """True when the mode needs a network ``nsr_tf.bounds`` supports."""
        return self.mode in PENALTY_MODES

    def get_config(self) -> dict:
        """Returns the fields as a plain (JSON-friendly) dict."""
        config = dataclasses.asdict(self)
        if config["norm"] == math.inf:
            config["norm"] = "inf"
        else:
            config["norm"] = 2
        return config

    @classmethod
    def from_config(cls, config: dict) -> "RobustConfig":
        """Rebuilds a config from :meth:`get_config`'s output."""
        return cls(**config)

    def replace(self, **changes) -> "RobustConfig":
        """Returns a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
