"""Attack-ready SavedModels: export with SN frozen, load without our code."""

from nsr_tf.export.saved_model import SavedModelClassifier
from nsr_tf.export.saved_model import export_attack_ready
from nsr_tf.export.saved_model import load_attack_ready
from nsr_tf.export.saved_model import plain_twin

__all__ = [
    "SavedModelClassifier",
    "export_attack_ready",
    "load_attack_ready",
    "plain_twin",
]
