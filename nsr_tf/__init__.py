"""nsr_tf: non-singular adversarial robustness for Keras 3 / TensorFlow.

Subpackages are imported lazily by name (``nsr_tf.data``, ``nsr_tf.attacks``,
``nsr_tf.bounds``, ``nsr_tf.training``, ``nsr_tf.models``,
``nsr_tf.evaluation``, ``nsr_tf.export``) so that ``import nsr_tf`` stays
cheap.
"""

__version__ = "0.1.0"
