"""Small arithmetic helpers shared by the margin-bound modules.

Radii arrive as Python numbers or tensors. A Python ``0.0`` means "this
perturbation is off", and the helpers then skip the op altogether, so that a
bound with some radius 0 costs no more than the formula without its term.
"""

import tensorflow as tf

from nsr_tf.bounds import affine as aff


def relu(t):
    return tf.nn.relu(t)


def is_zero(c) -> bool:
    """True only for the Python number 0 (a tensor is never known zero)."""
    return isinstance(c, float) and c == 0.0


def add(t, c):
    """``t + c``, skipping the op when ``c`` is the Python number 0."""
    return t if is_zero(c) else t + c


def scale(c, t):
    """``c * t`` for a Python or tensor scalar ``c``; None when ``c == 0``."""
    return None if is_zero(c) else c * t


def sum_terms(*terms):
    """Sum of the terms, dropping None and Python zeros (0.0 if none left)."""
    terms = [t for t in terms if t is not None and not is_zero(t)]
    if not terms:
        return 0.0
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def field_l1(layer, v):
    """Per-output receptive-field l1 of ``v >= 0``, and its per-example max.

    Returns:
        ``(field, field_max)``: ``field`` broadcastable to the layer's output
        (dense: ``(B, 1)``), ``field_max`` of shape ``(B,)``.
    """
    if layer.kind == "dense":
        total = aff.row_sum(v)
        return total[:, None], total
    field = aff.patch_l1(layer, v)
    return field, aff.batch_max(field)


def bias_radius(layer, eb):
    """The bias radius of ``layer``: ``eb`` if it has a bias, else 0."""
    return eb if layer.bias is not None else 0.0
