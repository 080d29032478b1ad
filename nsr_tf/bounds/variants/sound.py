"""Variant "sound" (the default): the smallest proven correction of zeta.

* Hidden layers: ``W^{m*} = max(W^m + eps_m, 0)`` for ``m >= 2`` (layer 1
  unchanged), which makes ``h^{k*}`` a true upper bound of every perturbed
  hidden layer, since a non-negative matrix is monotone on ``hhat >= 0``.
* Last layer: Lemma 1's placement (:mod:`.last_layer`).

Covers convolutions and biases (``docs/bounds.md``, "Extension").

Reference:
    Tsai et al. 2021, Theorem 2 and Lemma 1, corrected in
    ``docs/bounds.md`` (proof that "sound" is valid).
"""

from nsr_tf.bounds import _terms as terms
from nsr_tf.bounds import affine as aff
from nsr_tf.bounds.variants import base
from nsr_tf.bounds.variants import last_layer
from nsr_tf.bounds.variants import propagate


def sound_kernel(kernel, eps):
    """``(W^m + eps_m)^+`` (Keras layout)."""
    if terms.is_zero(eps):
        return terms.relu(kernel)
    return terms.relu(kernel + eps)


def hidden(problem) -> base.Hidden:
    """``u^{L-1}`` of the non-negative shifted network and its ``e``."""
    shift, e1 = propagate.first_layer(problem)
    uppers = propagate.shifted_uppers(problem, shift, sound_kernel)
    e = propagate.error_bound(problem, e1, uppers)
    return base.Hidden(upper=aff.flatten(uppers[-1]), error=e)


VARIANT = base.Variant(
    name="sound",
    hidden=hidden,
    pairwise_zeta=last_layer.pairwise_zeta,
    worst_zeta=last_layer.worst_zeta,
)
