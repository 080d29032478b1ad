"""Training modes as data: what each ``RobustConfig.mode`` attacks, perturbs
and penalizes, and which config fields it takes.

Modes (SN paper = Farnia, Zhang and Tse, ICLR 2019; NSR paper = Tsai, Hsu,
Yu and Chen, ICASSP 2021):

========================  =====================================================
``erm``                   plain cross-entropy on clean inputs.
``fgm``, ``pgm``, ``wrm``  SN paper §4-5: cross-entropy on adversarial examples
                          only (no clean mix), attacked from the model's own
                          predictions by default.
``weight_perturb``        NSR eq. 23 on clean inputs: CE + α max τ + β max ζ
                          (Fig. 1b: α = β = 0.25, eps_x = 0, eps_w = 0.01).
``at``                    Madry PGD training (NSR Fig. 1c), no penalty.
``at_beta``               NSR eq. 23 on PGD inputs: adversarial CE + α max τ
                          + β max ζ (Fig. 1e: α = 0, β = 0.005, eps = 0.03).
``jiwp``                  NSR eq. 23 on clean inputs with both penalties
                          (Fig. 1f: α = β = 0.02, eps_w = 0.02, eps_x = 0.3).
``joint_at``              in-loop joint input-weight perturbation: a few
                          ``joint_pgd`` steps, then the gradient at the
                          perturbed point is applied to the clean weights.
========================  =====================================================

α and β of eq. 23 are the config fields ``tau_weight`` and ``zeta_weight``
(not the SN cap β of ``models.build``). The NSR modes scale the whole
penalty by ``penalty_scale`` (default 1/50, see ``RobustConfig``).
"""

import dataclasses
import math
from types import MappingProxyType
from typing import Any

#: The paper's batch size B (NSR §4.1): the default penalty scale is 1/B.
PAPER_BATCH = 50
#: Default ``penalty_scale`` of the NSR modes (1/B, B = 50).
DEFAULT_PENALTY_SCALE = 1.0 / PAPER_BATCH

_ATTACK_FIELDS = ("norm", "eps", "labels", "clip_min", "clip_max")
_PGD_FIELDS = _ATTACK_FIELDS + ("steps", "step_size", "rand_init")
_PENALTY_FIELDS = (
    "tau_weight",
    "zeta_weight",
    "eps_x",
    "eps_w",
    "variant",
    "penalty_scale",
)
_PENALTY_DEFAULTS = dict(variant="sound", penalty_scale=DEFAULT_PENALTY_SCALE)


@dataclasses.dataclass(frozen=True)
class ModeSpec:
    """What one training mode does.

    Attributes:
        attack: the input attack of each step: ``"none"``, ``"fgm"``,
            ``"pgd"`` (``attacks.pgd``), ``"wrm"`` or ``"joint_pgd"``.
        weight_perturbation: True when the loss is taken at perturbed
            weights (``joint_at``).
        penalties: the eq. 23 terms the loss may carry (``"tau"``,
            ``"zeta"``); empty for modes without the penalty.
        defaults: values of unset (``None``) fields; ``step_size`` and
            ``step_size_w`` default to ``2 * radius / steps`` and ``eps_x``
            to ``eps`` (or 0) when absent here.
        required: fields that must be set.
        allowed: every field the mode reads; setting any other raises.
        positive: fields that must be > 0 (not only >= 0).
    """

    attack: str
    weight_perturbation: bool = False
    penalties: tuple[str, ...] = ()
    defaults: Any = dataclasses.field(default_factory=dict)
    required: tuple[str, ...] = ()
    allowed: frozenset = frozenset()
    positive: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "defaults", MappingProxyType(self.defaults))
        object.__setattr__(self, "allowed", frozenset(self.allowed))


MODE_TABLE = MappingProxyType(
    {
        "erm": ModeSpec(attack="none"),
        "fgm": ModeSpec(
            attack="fgm",
            defaults=dict(norm=2.0, labels="predicted"),
            required=("eps",),
            allowed=_ATTACK_FIELDS,
        ),
        "pgm": ModeSpec(
            attack="pgd",
            defaults=dict(
                norm=2.0, labels="predicted", steps=15, rand_init=False
            ),
            required=("eps",),
            allowed=_PGD_FIELDS,
        ),
        "wrm": ModeSpec(
            attack="wrm",
            defaults=dict(labels="predicted", steps=15),
            required=("gamma",),
            allowed=("gamma", "steps", "labels", "clip_min", "clip_max"),
            positive=("gamma",),
        ),
        "weight_perturb": ModeSpec(
            attack="none",
            penalties=("tau", "zeta"),
            defaults=dict(
                tau_weight=0.25,
                zeta_weight=0.25,
                eps_x=0.0,
                eps_w=0.01,
                **_PENALTY_DEFAULTS,
            ),
            allowed=_PENALTY_FIELDS,
        ),
        "at": ModeSpec(
            attack="pgd",
            defaults=dict(
                norm=math.inf, labels="true", steps=10, rand_init=False
            ),
            required=("eps",),
            allowed=_PGD_FIELDS,
        ),
        "at_beta": ModeSpec(
            attack="pgd",
            penalties=("tau", "zeta"),
            defaults=dict(
                norm=math.inf,
                labels="true",
                steps=10,
                rand_init=False,
                tau_weight=0.0,
                zeta_weight=0.005,
                eps_w=0.01,
                penalty_input="clean",
                **_PENALTY_DEFAULTS,
            ),
            required=("eps",),
            allowed=_PGD_FIELDS + _PENALTY_FIELDS + ("penalty_input",),
        ),
        "jiwp": ModeSpec(
            attack="none",
            penalties=("tau", "zeta"),
            defaults=dict(
                tau_weight=0.02,
                zeta_weight=0.02,
                eps_x=0.3,
                eps_w=0.02,
                **_PENALTY_DEFAULTS,
            ),
            allowed=_PENALTY_FIELDS,
        ),
        "joint_at": ModeSpec(
            attack="joint_pgd",
            weight_perturbation=True,
            defaults=dict(norm=math.inf, labels="true", steps=5, eps_w=0.0),
            allowed=(
                "norm",
                "labels",
                "steps",
                "step_size",
                "step_size_w",
                "eps_x",
                "eps_w",
                "clip_min",
                "clip_max",
            ),
        ),
    }
)

#: Every training mode.
MODES = tuple(MODE_TABLE)
#: Modes that train on input adversarial examples from an input attack.
INPUT_ATTACK_MODES = tuple(
    m for m, s in MODE_TABLE.items() if s.attack in ("fgm", "pgd", "wrm")
)
#: Modes whose loss carries the NSR margin penalty (eq. 23).
PENALTY_MODES = tuple(m for m, s in MODE_TABLE.items() if s.penalties)
