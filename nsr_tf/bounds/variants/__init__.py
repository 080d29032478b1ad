"""The variants of the NSR margin bound zeta, as a table (name -> maths).

Each variant lives in its own module, which defines ``VARIANT``, a
:class:`~nsr_tf.bounds.variants.base.Variant` (how it bounds the hidden
layers, its last-layer ``zeta``, optionally its own ``tau``). The public
functions of :mod:`nsr_tf.bounds.margin` look the variant up in
:data:`TABLE` and call its functions; no code branches on the name.

To add a variant: write ``nsr_tf/bounds/variants/<name>.py`` defining
``VARIANT = base.Variant(name="<name>", ...)`` (reuse the pieces of
:mod:`.propagate` and :mod:`.last_layer` where they fit), then import it
below and add ``<name>.VARIANT`` to the tuple. ``nsr_tf.bounds.VARIANTS``
and ``RobustConfig(variant=...)`` accept it from then on.
"""

from nsr_tf.bounds.variants import interval
from nsr_tf.bounds.variants import interval_exact
from nsr_tf.bounds.variants import joint_interval
from nsr_tf.bounds.variants import lemma
from nsr_tf.bounds.variants import paper
from nsr_tf.bounds.variants import sound
from nsr_tf.bounds.variants.base import Variant

#: Variant name -> :class:`Variant`, in the order of ``nsr_tf.bounds.VARIANTS``.
TABLE: dict[str, Variant] = {
    v.name: v
    for v in (
        paper.VARIANT,
        lemma.VARIANT,
        sound.VARIANT,
        interval.VARIANT,
        interval_exact.VARIANT,
        joint_interval.VARIANT,
    )
}
