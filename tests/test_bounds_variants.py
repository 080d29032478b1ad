"""The variant table of nsr_tf.bounds: names, and dispatch by data."""

import dataclasses

import numpy as np
import pytest

from nsr_tf import bounds
from nsr_tf import training
from nsr_tf.bounds import variants
from nsr_tf.bounds.variants import sound


def test_table_names_are_the_public_variants():
    assert tuple(variants.TABLE) == bounds.VARIANTS == training.VARIANTS
    assert bounds.VARIANTS == (
        "paper",
        "lemma",
        "sound",
        "interval",
        "interval_exact",
        "joint_interval",
    )
    for name, entry in variants.TABLE.items():
        assert entry.name == name


@pytest.mark.parametrize("bad", ["ibp", None, ["sound"]])
def test_unknown_variant_is_rejected(bad):
    with pytest.raises(ValueError, match="`variant` must be one of"):
        bounds.margin_penalty(
            [np.eye(2), np.eye(2)],
            np.ones((1, 2)),
            [0],
            eps_x=0.1,
            eps_w=0.1,
            variant=bad,
        )


def test_a_new_table_entry_is_all_a_variant_needs(monkeypatch, rng):
    # "halved": sound's hidden bounds and last layer, zeta halved. Added to
    # the table only; margin.py is not touched.
    def half(fn):
        return lambda *args: 0.5 * fn(*args)

    halved = dataclasses.replace(
        sound.VARIANT,
        name="halved",
        pairwise_zeta=half(sound.VARIANT.pairwise_zeta),
        worst_zeta=half(sound.VARIANT.worst_zeta),
    )
    monkeypatch.setitem(variants.TABLE, "halved", halved)
    kernels = [rng.normal(size=(4, 5)), rng.normal(size=(5, 3))]
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, 3, size=6)
    kw = dict(eps_x=0.05, eps_w=0.02)
    tau_s, zeta_s = bounds.margin_penalty(kernels, x, y, variant="sound", **kw)
    tau_h, zeta_h = bounds.margin_penalty(kernels, x, y, variant="halved", **kw)
    np.testing.assert_allclose(tau_h, tau_s, rtol=1e-12)
    np.testing.assert_allclose(zeta_h, 0.5 * zeta_s.numpy(), rtol=1e-12)
    pair_s = bounds.pairwise_tau_zeta(kernels, x, variant="sound", **kw)[1]
    pair_h = bounds.pairwise_tau_zeta(kernels, x, variant="halved", **kw)[1]
    np.testing.assert_allclose(pair_h, 0.5 * pair_s.numpy(), rtol=1e-12)
