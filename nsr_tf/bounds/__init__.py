"""Margin bounds (tau, zeta) and capacity norms (Phi) of trained networks."""

from nsr_tf.bounds.affine import AffineLayer
from nsr_tf.bounds.affine import conv_layer
from nsr_tf.bounds.affine import dense_layer
from nsr_tf.bounds.capacity import capacity_norm
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
from nsr_tf.bounds.model_norms import layer_norms
from nsr_tf.bounds.phi import lipschitz_gradient_bound
from nsr_tf.bounds.phi import phi_erm
from nsr_tf.bounds.phi import phi_fgm
from nsr_tf.bounds.phi import phi_pgm
from nsr_tf.bounds.phi import phi_wrm

__all__ = [
    "AffineLayer",
    "capacity_norm",
    "check_supported",
    "conv_layer",
    "dense_layer",
    "forward",
    "forward_with_margin_penalty",
    "forward_with_margin_penalty_from_model",
    "layer_norms",
    "lipschitz_constant",
    "lipschitz_gradient_bound",
    "margin_penalty",
    "margin_penalty_from_model",
    "model_kernels",
    "model_layers",
    "pairwise_tau_zeta",
    "pairwise_tau_zeta_from_model",
    "phi_erm",
    "phi_fgm",
    "phi_pgm",
    "phi_wrm",
    "VARIANTS",
]
