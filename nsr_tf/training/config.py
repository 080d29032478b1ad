"""RobustConfig: the one serializable object that sets a robust training mode.

The modes themselves (what each attacks, perturbs and penalizes, its
defaults and the fields it takes) are the table
:data:`nsr_tf.training.modes.MODE_TABLE`; this module validates a config
against it.
"""

import dataclasses
import math
from typing import Any

from nsr_tf import checks
from nsr_tf.bounds import margin
from nsr_tf.training.modes import DEFAULT_PENALTY_SCALE
from nsr_tf.training.modes import INPUT_ATTACK_MODES
from nsr_tf.training.modes import MODE_TABLE
from nsr_tf.training.modes import MODES
from nsr_tf.training.modes import PENALTY_MODES

#: Bound variants understood by ``nsr_tf.bounds``.
VARIANTS = margin.VARIANTS
LABELS = ("predicted", "true")
PENALTY_INPUTS = ("clean", "adversarial")
#: Names used before the rename to ``tau_weight``/``zeta_weight``.
_LEGACY_NAMES = {"alpha": "tau_weight", "beta": "zeta_weight"}
_NONNEG = (
    "eps",
    "step_size",
    "step_size_w",
    "gamma",
    "tau_weight",
    "zeta_weight",
    "eps_x",
    "eps_w",
    "penalty_scale",
)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {choices}. Received: {name}={value!r}"
        )
    return value


def _check_field(name, value):
    """One set field, validated and normalized (type-level checks only)."""
    if name == "norm":
        return checks.parse_norm(value)
    if name in _NONNEG:
        return checks.check_nonnegative(name, value)
    if name == "steps":
        return int(checks.check_integer("steps", value))
    if name == "labels":
        return _check_choice(name, value, LABELS)
    if name == "variant":
        return _check_choice(name, value, VARIANTS)
    if name == "penalty_input":
        return _check_choice(name, value, PENALTY_INPUTS)
    if name == "rand_init":
        return bool(value)
    # clip_min, clip_max
    if not checks.is_number(value) or math.isnan(value):
        raise ValueError(
            f"`{name}` must be a number. Received: {name}={value!r}"
        )
    return float(value)


@dataclasses.dataclass(frozen=True)
class RobustConfig:
    """How ``RobustModel.train_step`` makes its training robust.

    Each mode takes only the fields of its row of
    :data:`~nsr_tf.training.modes.MODE_TABLE`; setting another one raises.
    Unset fields (``None``) of the mode are resolved from the table at
    construction, and the fields the mode does not use stay ``None``, so the
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
        rand_init: random start for PGD (``pgm``/``at``/``at_beta``;
            default False; Madry's AT uses True).
        clip_min, clip_max: optional data range for adversarial inputs.
        tau_weight: α of NSR eq. 23, the weight of max τ (>= 0).
        zeta_weight: β of NSR eq. 23, the weight of max ζ (>= 0). Not the
            SN cap β of ``models.build``.
        eps_x: input radius used by the τ/ζ bounds and by ``joint_at``;
            default: the mode's Fig. 1 value, else ``eps`` when set, else 0.
        eps_w: element-wise absolute weight radius of the bounds and of
            ``joint_at`` (>= 0).
        variant: bound variant, one of :data:`VARIANTS` (default "sound").
        penalty_input: ``at_beta`` only: evaluate ζ at the "clean" (default,
            as Lemma 1 bounds f_W'(x) - f_W(x)) or the "adversarial" input.
        penalty_scale: factor on the whole eq. 23 penalty, which is added to
            the batch-mean cross-entropy: ``loss = mean CE + penalty_scale *
            mean(α τ + β ζ)``. Default 1/50 = 1/B for the paper's batch
            B = 50: the reading of eq. 23 under which the paper's printed α,
            β train, namely that the authors summed the cross-entropy over
            the batch and added the penalty once per batch (their text says
            α and β were tuned for reasonable clean accuracy). With
            ``penalty_scale=1.0`` (the printed scale on a mean CE) the paper's
            MLP collapses: at Glorot init 0.25·ζ(ε_w = 0.01) ≈ 333 against
            CE ≈ 2.3, ζ's gradient is about 400x the CE's (JIWP about
            680x), for inputs >= 0 it lowers every first-layer weight
            together, and 82% of first-layer units are dead by step 200,
            97% by step 300 (accuracy stays at chance). At 1/B, after 2
            epochs (Adam 1e-4, batch 50): Weight-Perturb 0.84 and JIWP
            0.81 clean test accuracy (Standard 0.91); under weight-only
            joint PGD at ε_w = 0.005, Weight-Perturb keeps 0.44 and Standard
            0.14. See ``docs/nsr_training.md``.

    Raises:
        ValueError: naming the field and echoing the value, for an unknown
            mode/norm/labels/variant, a negative radius or coefficient, a
            missing required field, a field the mode does not use, or an
            inconsistent combination.

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
    rand_init: bool | None = None
    clip_min: float | None = None
    clip_max: float | None = None
    tau_weight: float | None = None
    zeta_weight: float | None = None
    eps_x: float | None = None
    eps_w: float | None = None
    variant: str | None = None
    penalty_input: str | None = None
    penalty_scale: float | None = None

    def __post_init__(self):
        mode = _check_choice("mode", self.mode, MODES)
        spec = MODE_TABLE[mode]
        fields = [f.name for f in dataclasses.fields(self) if f.name != "mode"]
        values = {}
        for name in fields:
            value = getattr(self, name)
            if value is None:
                continue
            if name not in spec.allowed:
                raise ValueError(
                    f"`{name}` is not used by mode={mode!r} (it takes "
                    f"{sorted(spec.allowed)}). Received: {name}={value!r}"
                )
            values[name] = _check_field(name, value)
        for name in spec.required:
            if name not in values:
                raise ValueError(
                    f"`{name}` must be set for mode={mode!r}. "
                    f"Received: {name}=None"
                )
        for name, value in spec.defaults.items():
            values.setdefault(name, value)
        self._derive(spec, values)
        self._check_combination(mode, spec, values)
        for name in fields:
            object.__setattr__(self, name, values.get(name))

    @staticmethod
    def _derive(spec, values):
        """Defaults computed from other fields (SN paper §4 step sizes)."""
        allowed = spec.allowed
        if "eps_x" in allowed:
            values.setdefault("eps_x", values.get("eps", 0.0))
        if "step_size" in allowed and "step_size" not in values:
            key = "eps_x" if spec.weight_perturbation else "eps"
            values["step_size"] = 2.0 * values[key] / values["steps"]
        if "step_size_w" in allowed and "step_size_w" not in values:
            values["step_size_w"] = 2.0 * values["eps_w"] / values["steps"]

    @staticmethod
    def _check_combination(mode, spec, values):
        for name in spec.positive:
            if not values[name] > 0:
                raise ValueError(
                    f"`{name}` must be > 0 for mode={mode!r}. "
                    f"Received: {name}={values[name]!r}"
                )
        if spec.weight_perturbation:
            if values["norm"] != math.inf:
                raise ValueError(
                    f"`norm` must be inf for mode={mode!r} (the joint attack "
                    f"takes sign steps). Received: norm={values['norm']!r}"
                )
            if not (values["eps_x"] > 0 or values["eps_w"] > 0):
                raise ValueError(
                    f"`eps_x` or `eps_w` must be > 0 for mode={mode!r}. "
                    f"Received: eps_x={values['eps_x']}, "
                    f"eps_w={values['eps_w']}"
                )
        low, high = values.get("clip_min"), values.get("clip_max")
        if low is not None and high is not None and low > high:
            raise ValueError(
                "`clip_min` must be <= `clip_max`. Received: "
                f"clip_min={low}, clip_max={high}"
            )

    @property
    def spec(self):
        """This mode's row of :data:`~nsr_tf.training.modes.MODE_TABLE`."""
        return MODE_TABLE[self.mode]

    @property
    def uses_input_attack(self) -> bool:
        """True when each step trains on input adversarial examples."""
        return self.spec.attack in ("fgm", "pgd", "wrm")

    @property
    def uses_penalty(self) -> bool:
        """True when the loss carries a nonzero eq. 23 penalty."""
        return (
            self.uses_bounds
            and self.penalty_scale > 0
            and (self.tau_weight > 0 or self.zeta_weight > 0)
        )

    @property
    def uses_bounds(self) -> bool:
        """True when the mode needs a network ``nsr_tf.bounds`` supports."""
        return bool(self.spec.penalties)

    def get_config(self) -> dict:
        """Returns the fields as a plain (JSON-friendly) dict."""
        config = dataclasses.asdict(self)
        if config["norm"] is not None:
            config["norm"] = "inf" if config["norm"] == math.inf else 2
        return config

    @classmethod
    def from_config(cls, config: dict) -> "RobustConfig":
        """Rebuilds a config from :meth:`get_config`'s output.

        A config saved before the rename (keys ``alpha``/``beta``, every
        field resolved) is read as ``tau_weight``/``zeta_weight`` with the
        fields its mode does not use dropped, and ``penalty_scale=1.0``, the
        scale it was trained with.
        """
        config = dict(config)
        if any(key in config for key in _LEGACY_NAMES):
            for old, new in _LEGACY_NAMES.items():
                if old in config:
                    config[new] = config.pop(old)
            spec = MODE_TABLE[_check_choice("mode", config.get("mode"), MODES)]
            config = {
                k: v
                for k, v in config.items()
                if k == "mode" or k in spec.allowed
            }
            if spec.penalties:
                config.setdefault("penalty_scale", 1.0)
        return cls(**config)

    def replace(self, **changes) -> "RobustConfig":
        """Returns a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


__all__ = [
    "DEFAULT_PENALTY_SCALE",
    "INPUT_ATTACK_MODES",
    "LABELS",
    "MODES",
    "PENALTY_INPUTS",
    "PENALTY_MODES",
    "VARIANTS",
    "RobustConfig",
]
