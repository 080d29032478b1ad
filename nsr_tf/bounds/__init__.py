"""Margin bounds (tau, zeta) and capacity norms (Phi) of trained networks."""

from nsr_tf.bounds.affine import AffineLayer
from nsr_tf.bounds.affine import conv_layer
from nsr_tf.bounds.affine import dense_layer
from nsr_tf.bounds.keras_model import check_supported
from nsr_tf.bounds.keras_model import forward_with_margin_penalty_from_model
from nsr_tf.bounds.keras_model import margin_penalty_from_model
from nsr_tf.bounds.keras_model import model_kernels
from nsr_tf.bounds.keras_model import model_layers
from nsr_tf.bounds.keras_model import pairwise_tau_zeta_from_model
from nsr_tf.bounds.margin import VARIANTS
from nsr_tf.bounds.margin import forward
from nsr_tf.bounds.margin import forward_with_margin_penalty
from nsr_tf.bounds.margin import margin_penalty
from nsr_tf.bounds.margin import pairwise_tau_zeta

__all__ = [
    "AffineLayer",
    "VARIANTS",
    "check_supported",
    "conv_layer",
    "dense_layer",
    "forward",
    "forward_with_margin_penalty",
    "forward_with_margin_penalty_from_model",
    "margin_penalty",
    "margin_penalty_from_model",
    "model_kernels",
    "model_layers",
    "pairwise_tau_zeta",
    "pairwise_tau_zeta_from_model",
]
