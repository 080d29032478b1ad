"""Datasets of both papers: MNIST, CIFAR-10 and SVHN, preprocessed as the SN
paper does, from official files, the bundled MNIST or tensorflow-datasets.

The official MNIST files are bundled (CC BY-SA 3.0, Y. LeCun and C. Cortes).
"""

from nsr_tf.data.loader import NAMES
from nsr_tf.data.loader import SPLITS
from nsr_tf.data.loader import VALIDATION_SIZE
from nsr_tf.data.loader import describe_source
from nsr_tf.data.loader import load
from nsr_tf.data.loader import resolve_source
from nsr_tf.data.pipeline import mean_l2_norm
from nsr_tf.data.pipeline import to_dataset

__all__ = [
    "NAMES",
    "SPLITS",
    "VALIDATION_SIZE",
    "describe_source",
    "load",
    "mean_l2_norm",
    "resolve_source",
    "to_dataset",
]
