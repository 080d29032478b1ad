"""nsr_tf: non-singular adversarial robustness for Keras 3 / TensorFlow.

Importing ``nsr_tf`` imports the spectrally-normalized layers (package
``layers``, which needs only TensorFlow and Keras), so that their classes
are registered with Keras and ``keras.saving.load_model`` reads a ``.keras``
file holding SN layers without further imports. The subpackages
(``nsr_tf.data``, ``nsr_tf.attacks``, ``nsr_tf.bounds``,
``nsr_tf.training``, ``nsr_tf.models``, ``nsr_tf.evaluation``,
``nsr_tf.export``) are imported by name, when used.
"""

import layers as _layers  # noqa: F401  (registers SNDense, SNConv2D)

__version__ = "0.1.0"
