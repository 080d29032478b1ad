"""Margin bounds (tau, zeta) and capacity norms (Phi) of trained networks."""

from nsr_tf.bounds.affine import AffineLayer
from nsr_tf.bounds.affine import conv_layer
from nsr_tf.bounds.affine import dense_layer
from nsr_tf.bounds.capacity import capacity_norm
from nsr_tf.bounds.capacity import fig3_factors
from nsr_tf.bounds.capacity import fig3_normalizer
from nsr_tf.bounds.capacity import layer_norms
from nsr_tf.bounds.capacity import lipschitz_gradient_bound
from nsr_tf.bounds.capacity import margins
from nsr_tf.bounds.capacity import norm_gain
from nsr_tf.bounds.capacity import normalized_margins
from nsr_tf.bounds.capacity import phi_erm
from nsr_tf.bounds.capacity import phi_fgm
from nsr_tf.bounds.capacity import phi_pgm
from nsr_tf.bounds.capacity import phi_wrm
from nsr_tf.bounds.keras_model import check_supported
from nsr_tf.bounds.keras_model import forward_with_margin_penalty_from_model
from nsr_tf.bounds.keras_model import margin_penalty_from_model
from nsr_tf.bounds.keras_model import model_kernels
from nsr_tf.bounds.keras_model import model_layers
from nsr_tf.bounds.keras_model import pairwise_tau_zeta_from_model
from nsr_tf.bounds.lipschitz import lipschitz_constant
from nsr_tf.bounds.margin import VARIANTS
from nsr_tf.bounds.margin import forward
from nsr_tf.bounds.margin import forward_with_margin_penalty
from nsr_tf.bounds.margin import margin_penalty
from nsr_tf.bounds.margin import pairwise_tau_zeta

__all__ = [
    "AffineLayer",
    "capacity_norm",
    "check_supported",
    "conv_layer",
    "dense_layer",
    "fig3_factors",
    "fig3_normalizer",
    "forward",
    "forward_with_margin_penalty",
    "forward_with_margin_penalty_from_model",
    "layer_norms",
    "lipschitz_constant",
    "lipschitz_gradient_bound",
    "margin_penalty",
    "margin_penalty_from_model",
    "margins",
    "model_kernels",
    "model_layers",
    "norm_gain",
    "normalized_margins",
    "pairwise_tau_zeta",
    "pairwise_tau_zeta_from_model",
    "phi_erm",
    "phi_fgm",
    "phi_pgm",
    "phi_wrm",
    "VARIANTS",
]
