"""Robust training through ``model.fit`` (SN paper and NSR paper modes)."""

from nsr_tf.training.callbacks import SNEarlyStopping
from nsr_tf.training.collapse import CollapseMonitor
from nsr_tf.training.collapse import CollapseWarning
from nsr_tf.training.config import MODES
from nsr_tf.training.config import VARIANTS
from nsr_tf.training.config import RobustConfig
from nsr_tf.training.robust_model import RobustModel
from nsr_tf.training.robust_model import robustify

__all__ = [
    "CollapseMonitor",
    "CollapseWarning",
    "MODES",
    "VARIANTS",
    "RobustConfig",
    "RobustModel",
    "SNEarlyStopping",
    "robustify",
]
