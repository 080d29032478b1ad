"""Tests for nsr_tf.training.RobustConfig: defaults, round trip, validation."""

import json
import math

import pytest

from nsr_tf.training import MODES
from nsr_tf.training import RobustConfig


def test_defaults_resolve_per_mode():
    pgm = RobustConfig(mode="pgm", eps=0.6)
    assert pgm.norm == 2.0 and pgm.steps == 15 and pgm.labels == "predicted"
    assert pgm.step_size == pytest.approx(2 * 0.6 / 15)  # SN paper §4
    assert pgm.eps_x is None  # a field pgm does not use stays unset
    at = RobustConfig(mode="at", eps=0.09)
    assert at.norm == math.inf and at.labels == "true" and at.steps == 10
    assert at.step_size == pytest.approx(2 * 0.09 / 10)
    joint = RobustConfig(mode="joint_at", eps_x=0.1, eps_w=0.01, steps=4)
    assert joint.step_size == pytest.approx(0.05)
    assert joint.step_size_w == pytest.approx(0.005)
    assert RobustConfig().mode == "erm"
    assert RobustConfig(mode="fgm", eps=1.0, norm="linf").norm == math.inf


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mode="erm"),
        dict(mode="fgm", eps=0.5, norm="inf", labels="true"),
        dict(mode="pgm", eps=0.5, steps=3, rand_init=True, clip_min=0.0,
             clip_max=1.0),
        dict(mode="wrm", gamma=0.37),
        dict(mode="at_beta", eps=0.08, zeta_weight=3e-4, eps_w=0.01,
             variant="interval", penalty_input="adversarial"),
        dict(mode="jiwp", tau_weight=0.02, zeta_weight=0.02, eps_w=0.02,
             eps_x=0.3, penalty_scale=1.0),
        dict(mode="weight_perturb"),
        dict(mode="joint_at", eps_x=0.1, eps_w=0.01),
    ],
)  # fmt: skip
def test_config_round_trips_through_json(kwargs):
    config = RobustConfig(**kwargs)
    again = RobustConfig.from_config(
        json.loads(json.dumps(config.get_config()))
    )
    assert again == config


def test_every_mode_is_constructible():
    extra = {
        "fgm": dict(eps=0.1), "pgm": dict(eps=0.1), "wrm": dict(gamma=1.0),
        "at": dict(eps=0.1), "at_beta": dict(eps=0.1),
        "joint_at": dict(eps_x=0.1),
    }  # fmt: skip
    for mode in MODES:
        assert RobustConfig(mode=mode, **extra.get(mode, {})).mode == mode


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mode="madry"), "`mode` must be one of"),
        (dict(mode="fgm", eps=0.1, norm=1), "`norm` must be 2 or inf"),
        (dict(mode="fgm"), "`eps` must be set"),
        (dict(mode="pgm", eps=-0.1), r"`eps` must be .*eps=-0.1"),
        (dict(mode="pgm", eps=float("nan")), "`eps` must be"),
        (dict(mode="pgm", eps=0.1, steps=0), "`steps` must be"),
        (dict(mode="pgm", eps=0.1, steps=2.5), "`steps` must be"),
        (dict(mode="pgm", eps=0.1, step_size=-1), "`step_size` must be"),
        (dict(mode="wrm"), "`gamma` must be set"),
        (dict(mode="wrm", gamma=0.0), "`gamma` must be > 0"),
        (dict(mode="fgm", eps=0.1, labels="gold"), "`labels` must be"),
        (
            dict(mode="jiwp", tau_weight=-1.0),
            r"`tau_weight` must be .*tau_weight=-1.0",
        ),
        (dict(mode="jiwp", zeta_weight=-0.5), "`zeta_weight` must be"),
        (dict(mode="jiwp", penalty_scale=-1), "`penalty_scale` must be"),
        (dict(mode="jiwp", eps_w=-0.01), "`eps_w` must be"),
        (dict(mode="jiwp", eps_x=-0.01), "`eps_x` must be"),
        (dict(mode="jiwp", variant="exact"), "`variant` must be"),
        (dict(mode="erm", tau_weight=0.1), "`tau_weight` is not used by mode"),
        (dict(mode="at", eps=0.1, zeta_weight=0.1), "`zeta_weight` is not"),
        (dict(mode="joint_at", eps_x=0.1, norm=2), "`norm` must be inf"),
        (dict(mode="joint_at"), "`eps_x` or `eps_w` must be > 0"),
        (dict(mode="jiwp", penalty_input="adversarial"), "penalty_input"),
        (dict(mode="at_beta", eps=0.1, penalty_input="x"), "penalty_input"),
        (dict(mode="pgm", eps=0.1, clip_min=1.0, clip_max=0.0), "clip_min"),
    ],
)
def test_bad_config_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RobustConfig(**kwargs)


@pytest.mark.parametrize(
    "mode, want",
    [
        # NSR Fig. 1 (spec nsr_paper.md §2.5), penalty scale 1/B, B = 50.
        ("weight_perturb", dict(tau_weight=0.25, zeta_weight=0.25, eps_x=0.0,
                                eps_w=0.01, penalty_scale=0.02)),
        ("jiwp", dict(tau_weight=0.02, zeta_weight=0.02, eps_x=0.3,
                      eps_w=0.02, penalty_scale=0.02)),
    ],
)  # fmt: skip
def test_nsr_modes_default_to_the_papers_settings(mode, want):
    config = RobustConfig(mode=mode)
    assert {k: getattr(config, k) for k in want} == pytest.approx(want)
    assert config.uses_penalty and config.variant == "sound"
    assert config.eps is None and config.labels is None


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(mode="erm", eps=0.1), "eps"),
        (dict(mode="erm", penalty_scale=1.0), "penalty_scale"),
        (dict(mode="fgm", eps=0.1, steps=3), "steps"),
        (dict(mode="wrm", gamma=1.0, eps=0.1), "eps"),
        (dict(mode="pgm", eps=0.1, eps_w=0.01), "eps_w"),
        (dict(mode="weight_perturb", clip_min=0.0), "clip_min"),
        (dict(mode="jiwp", rand_init=True), "rand_init"),
        (dict(mode="joint_at", eps_x=0.1, rand_init=False), "rand_init"),
    ],
)
def test_a_field_the_mode_does_not_use_raises(kwargs, field):
    match = f"`{field}` is not used by mode='{kwargs['mode']}'"
    with pytest.raises(ValueError, match=match):
        RobustConfig(**kwargs)


def test_every_allowed_field_is_a_config_field():
    import dataclasses

    from nsr_tf.training.modes import MODE_TABLE

    names = {f.name for f in dataclasses.fields(RobustConfig)}
    for spec in MODE_TABLE.values():
        assert spec.allowed <= names
        assert set(spec.defaults) <= spec.allowed
        assert set(spec.required) <= spec.allowed


def test_legacy_alpha_beta_config_loads_at_its_trained_scale():
    old = dict(
        mode="jiwp", norm=2, eps=None, steps=1, step_size=0.0,
        step_size_w=0.04, gamma=None, labels="predicted", rand_init=False,
        clip_min=None, clip_max=None, alpha=0.02, beta=0.03, eps_x=0.3,
        eps_w=0.02, variant="sound", penalty_input="clean",
    )  # fmt: skip
    config = RobustConfig.from_config(old)
    assert (config.tau_weight, config.zeta_weight) == (0.02, 0.03)
    assert config.penalty_scale == 1.0 and config.steps is None


def test_replace_validates_again():
    config = RobustConfig(mode="pgm", eps=0.1)
    assert config.replace(eps=0.2).eps == 0.2
    with pytest.raises(ValueError, match="eps"):
        config.replace(eps=-1.0)
