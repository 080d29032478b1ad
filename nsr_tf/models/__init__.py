"""The architecture zoo of both papers, built from our SN layers.

``build(name, ...)`` returns a functional ``keras.Model`` from images to
logits for every network of the SN paper's spec §2 and the NSR paper's MLP.
"""

from typing import Any

import keras

from nsr_tf import checks
from nsr_tf.models._lrn import LocalResponseNormalization
from nsr_tf.models.alexnet import alexnet
from nsr_tf.models.alexnet import elu_alexnet
from nsr_tf.models.elunet import elunet
from nsr_tf.models.inception import inception
from nsr_tf.models.mlp import mlp
from nsr_tf.models.nsr_mlp import nsr_mlp
from nsr_tf.models.resnet import resnet


def _mlp1(**kwargs):
    kwargs.pop("method")
    kwargs.setdefault("name", "mlp1")
    return mlp(hidden_layers=1, **kwargs)


def _mlp2(**kwargs):
    kwargs.pop("method")
    kwargs.setdefault("name", "mlp2")
    return mlp(hidden_layers=2, **kwargs)


def _nsr_mlp(**kwargs):
    kwargs.pop("method")
    return nsr_mlp(**kwargs)


_BUILDERS = {
    "alexnet": alexnet,
    "elu_alexnet": elu_alexnet,
    "inception": inception,
    "resnet": resnet,
    "mlp1": _mlp1,
    "mlp2": _mlp2,
    "elunet": elunet,
    "nsr_mlp": _nsr_mlp,
}

#: Names accepted by :func:`build`.
NAMES = tuple(_BUILDERS)

_METHODS = ("operator", "kernel")


def build(
    name: str,
    *,
    input_shape,
    beta: float = float("inf"),
    method: str = "operator",
    num_classes: int = 10,
    **options: Any,
) -> keras.Model:
    """Builds one network of the zoo.

    Args:
        name: one of :data:`NAMES`: ``alexnet``, ``elu_alexnet``,
            ``inception``, ``resnet``, ``mlp1``, ``mlp2``, ``elunet``
            (SN paper, spec sn_paper.md §2) or ``nsr_mlp`` (NSR paper's
            bias-free 784-128-64-32-10 ReLU MLP).
        input_shape: (H, W, C) of one example, e.g. (28, 28, 1) for MNIST
            and (28, 28, 3) for cropped CIFAR-10/SVHN. The SN paper's conv
            nets assume 28x28.
        beta: SN cap on the spectral norm of every layer (``inf``: no cap,
            the SN paper's baseline, which still tracks sigma).
        method: conv SN method, ``"operator"`` (the paper's proposed one) or
            ``"kernel"`` (Miyato et al.). Ignored by the dense-only networks.
        num_classes: number of logits.
        **options: family-specific options, e.g. ``intended_widths=True``
            for ``resnet`` (16/32/64 instead of the checkpoints' 16/32/128).

    Returns:
        An uncompiled functional ``keras.Model``.

    Raises:
        ValueError: for an unknown name or method, a bad input shape, a
            non-positive ``num_classes`` or ``beta``.

    Example:
        >>> model = build("mlp1", input_shape=(28, 28, 1), beta=2.0)
        >>> model.output_shape
        (None, 10)
    """
    if name not in _BUILDERS:
        raise ValueError(
            f"`name` must be one of {NAMES}. Received: name={name!r}"
        )
    if method not in _METHODS:
        raise ValueError(
            f"`method` must be one of {_METHODS}. Received: method={method!r}"
        )
    try:
        shape = tuple(int(d) for d in input_shape)
        ok = len(shape) >= 1 and all(d >= 1 for d in shape)
        ok = ok and all(int(d) == d for d in input_shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            "`input_shape` must be a sequence of positive integers, e.g. "
            f"(28, 28, 1). Received: input_shape={input_shape!r}"
        )
    checks.check_integer("num_classes", num_classes, minimum=2)
    beta = checks.check_positive("beta", beta, finite=False)
    return _BUILDERS[name](
        input_shape=shape,
        beta=float(beta),
        method=method,
        num_classes=int(num_classes),
        **options,
    )


__all__ = [
    "NAMES",
    "LocalResponseNormalization",
    "alexnet",
    "build",
    "elu_alexnet",
    "elunet",
    "inception",
    "mlp",
    "nsr_mlp",
    "resnet",
]
