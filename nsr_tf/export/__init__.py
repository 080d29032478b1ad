"""Attack-ready SavedModels: export with SN frozen, load without our code."""

from nsr_tf.export.saved_model import SavedModelClassifier
from nsr_tf.export.saved_model import as_callable
from nsr_tf.export.saved_model import export_attack_ready
from nsr_tf.export.saved_model import load_attack_ready
from nsr_tf.export.saved_model import plain_twin

__all__ = [
    "SavedModelClassifier",
    "as_callable",
    "export_attack_ready",
    "load_attack_ready",
    "plain_twin",
]
