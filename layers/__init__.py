"""Spectrally-normalized Keras layers (Farnia, Zhang and Tse, ICLR 2019)."""

from layers.kernels import effective_kernel
from layers.kernels import is_spectral
from layers.override import get_kernel_override
from layers.override import kernel_override
from layers.sn_conv import SNConv2D
from layers.sn_dense import SNDense
from layers.spectral import conv_operator_norm
from layers.spectral import conv_power_iteration
from layers.spectral import dense_operator_norm
from layers.spectral import dense_power_iteration

__all__ = [
    "SNConv2D",
    "SNDense",
    "conv_operator_norm",
    "conv_power_iteration",
    "dense_operator_norm",
    "dense_power_iteration",
    "effective_kernel",
    "get_kernel_override",
    "is_spectral",
    "kernel_override",
]
