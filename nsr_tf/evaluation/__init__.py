"""Evaluation helpers: robust accuracy, accuracy surfaces, masking screens."""

from nsr_tf.evaluation.certify import bound_certified_accuracy
from nsr_tf.evaluation.certify import certified_accuracy
from nsr_tf.evaluation.certify import certified_surface
from nsr_tf.evaluation.masking import MaskingReport
from nsr_tf.evaluation.masking import Screen
from nsr_tf.evaluation.masking import gradient_masking_report
from nsr_tf.evaluation.robust_accuracy import logits_under
from nsr_tf.evaluation.robust_accuracy import robust_accuracy
from nsr_tf.evaluation.surface import accuracy_surface
from nsr_tf.evaluation.surface import plot_surface
from nsr_tf.evaluation.surface import surface_auc

__all__ = [
    "MaskingReport",
    "Screen",
    "accuracy_surface",
    "bound_certified_accuracy",
    "certified_accuracy",
    "certified_surface",
    "gradient_masking_report",
    "logits_under",
    "plot_surface",
    "robust_accuracy",
    "surface_auc",
]
