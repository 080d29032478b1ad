"""What a margin-bound variant is: a call's problem, its hidden bounds, and
the variant record that the table in :mod:`nsr_tf.bounds.variants` holds.
"""

import dataclasses
import functools
from typing import Any
from typing import Callable
from typing import Optional

from nsr_tf.bounds import affine as aff
from nsr_tf.bounds import tau


@dataclasses.dataclass(frozen=True)
class Problem:
    """One call's network, clean input and radii, checked and normalized.

    Attributes:
        layers: the :class:`~nsr_tf.bounds.affine.AffineLayer` chain, tensor
            kernels of one floating dtype; the last one is dense (logits).
        x: clean inputs ``(B, ...)`` in the kernels' dtype.
        eps_x: input radius (l_inf): a float >= 0 or a scalar tensor.
        eps_w: weight radius per layer.
        eps_b: bias radius per layer (used for layers with a bias).
        first_preactivation: the clean ``z^1 = A_1(x) + b_1``.
        clean_hidden: the clean last hidden layer ``h^{L-1}``, flattened
            ``(B, n)``, when the caller's forward pass has it; else None.
    """

    layers: list
    x: Any
    eps_x: Any
    eps_w: list
    eps_b: list
    first_preactivation: Any
    clean_hidden: Any = None

    @functools.cached_property
    def norms(self) -> list:
        """``N_m = ||W^m||_inf`` of layers ``1 .. L-1`` (built on first use)."""
        return [aff.inf_norm(layer) for layer in self.layers[:-1]]


@dataclasses.dataclass(frozen=True)
class Hidden:
    """Bounds on the perturbed last hidden layer ``hhat^{L-1}`` at clean x.

    Attributes:
        upper: ``(B, n)`` upper bound ``u >= hhat^{L-1}`` (``h^{L-1*}`` or
            the interval bound), flattened.
        error: ``(B,)`` bound ``e >= ||hhat^{L-1} - h^{L-1}||_inf`` (for the
            printed variants: the bracket of eq. 22 without its last term),
            or None where the variant does not use it.
        lower: ``(B, n)`` lower bound of ``hhat^{L-1}``, or None.
        clean: ``(B, n)`` clean ``h^{L-1}``, or None.
    """

    upper: Any
    error: Optional[Any] = None
    lower: Optional[Any] = None
    clean: Optional[Any] = None


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of bounding the margin increase: its name and its maths.

    ``tau + zeta`` bounds ``f^{ij}_What(xhat) - f^{ij}_W(x)``. The public
    functions of :mod:`nsr_tf.bounds.margin` call, in order, ``hidden``,
    then the ``tau`` and ``zeta`` of the form they return.

    Attributes:
        name: the ``variant=`` string.
        hidden: ``(problem) -> Hidden``.
        pairwise_zeta: ``(problem, hidden, dist) -> (B, K, K)`` zeta for
            every pair (the diagonal is zeroed by the caller); ``dist`` is
            ``D`` of :func:`nsr_tf.bounds.tau.row_distances`.
        worst_zeta: ``(problem, hidden, y, dist_y) -> (B,)``, eq. 23's
            ``max_{y' != y} zeta^{y'y}``; ``y`` are int32 labels and
            ``dist_y = max_{y'} D[y', y]``.
        pairwise_tau: ``(problem, dist) -> (K, K)``; eq. 21 by default.
        worst_tau: ``(problem, dist_y) -> (B,)``; eq. 21 by default.
        dense_bias_free_only: the variant is defined only for bias-free
            dense networks (the paper's printed forms).
    """

    name: str
    hidden: Callable
    pairwise_zeta: Callable
    worst_zeta: Callable
    pairwise_tau: Callable = tau.pairwise
    worst_tau: Callable = tau.worst
    dense_bias_free_only: bool = False
