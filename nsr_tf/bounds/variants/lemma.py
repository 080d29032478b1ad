"""Variant "lemma": eq. 22's ``h*`` with Lemma 1's placement (not valid).

The hidden layers are those of "paper" (eq. 22's shifted network, ``e``
doubled for L = 2); the ``2 eps_L ||h^{L-1*}||_1`` term goes outside the
braces as in Lemma 1 (eqs. 33-37). Still not a valid bound, because ``h*``
is not an upper bound of ``hhat`` for ``m >= 2`` (``docs/bounds.md``).
Bias-free dense networks only.

Reference:
    Tsai et al. 2021, Lemma 1 and eq. 22.
"""

from nsr_tf.bounds.variants import base
from nsr_tf.bounds.variants import last_layer
from nsr_tf.bounds.variants import paper

VARIANT = base.Variant(
    name="lemma",
    hidden=paper.printed_hidden,
    pairwise_zeta=last_layer.pairwise_zeta,
    worst_zeta=last_layer.worst_zeta,
    dense_bias_free_only=True,
)
