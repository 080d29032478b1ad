"""Small tensor helpers of ``RobustModel``'s step (replica scaling, labels,
batch reduction, effective kernels)."""

import tensorflow as tf

from nsr_tf import checks


def _replica_scale(value):
    """Divides a per-replica loss term by the number of replicas in sync.

    Keras' compiled losses are scaled this way under ``tf.distribute`` (the
    gradients are then summed over replicas), so extra terms must be too.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        value = value * tf.cast(1.0 / replicas, value.dtype)
    return value


def _replica_unscale(value):
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        value = value * tf.cast(replicas, value.dtype)
    return value


def _int_labels(y):
    """Integer class labels from sparse ``(B,)``/``(B, 1)`` or one-hot ``y``."""
    return checks.class_indices(y)


def _batch_mean(values, sample_weight):
    """Per-example values reduced like a Keras loss ("sum_over_batch_size").

    With sample weights this is ``sum(w * v) / batch_size``, the reduction
    Keras applies to the compiled cross-entropy, so eq. 23's per-example sum
    CE + α τ + β ζ (tau_weight, zeta_weight) is reduced consistently.
    """
    values = tf.cast(values, tf.float32)
    if sample_weight is not None:
        values = values * tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)
    return tf.reduce_mean(values)
