"""Variant "interval" (the spec's "ibp"): interval-propagated ``u`` in the
"sound" formula.

The upper bounds of interval bound propagation replace ``h^{k*}`` in the
e-recursion and in the last-layer step of "sound" (Lemma 1's placement);
valid because ``0 <= hhat^k <= u^k`` is all the proof of "sound" uses, and
never looser than "sound" (``docs/bounds.md``, "Interval variants").

Reference:
    Tsai et al. 2021, Lemma 1; ``docs/bounds.md``.
"""

from nsr_tf.bounds import affine as aff
from nsr_tf.bounds.variants import base
from nsr_tf.bounds.variants import last_layer
from nsr_tf.bounds.variants import propagate


def hidden(problem) -> base.Hidden:
    """The interval ``u^{L-1}`` and ``e`` from the interval upper bounds."""
    shift, e1 = propagate.first_layer(problem)
    uppers = [u for _, u in propagate.interval_boxes(problem, shift)]
    e = propagate.error_bound(problem, e1, uppers)
    return base.Hidden(upper=aff.flatten(uppers[-1]), error=e)


VARIANT = base.Variant(
    name="interval",
    hidden=hidden,
    pairwise_zeta=last_layer.pairwise_zeta,
    worst_zeta=last_layer.worst_zeta,
)
