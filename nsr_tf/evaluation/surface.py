"""Accuracy surfaces over (eps_x, eps_w), their AUC, and contour plots."""

from typing import Any

import numpy as np

from nsr_tf import checks
from nsr_tf.attacks.joint import joint_pgd
from nsr_tf.attacks.universal import universal_joint_pgd
from nsr_tf.evaluation.robust_accuracy import ATTACK_LABELS
from nsr_tf.evaluation.robust_accuracy import logits_under
from nsr_tf.evaluation.robust_accuracy import robust_accuracy


def _check_grid(name: str, grid: Any) -> np.ndarray:
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or len(g) < 2 or np.any(np.diff(g) <= 0) or g[0] < 0:
        raise ValueError(
            f"`{name}` must be a 1-D strictly increasing grid of >= 2 "
            f"non-negative values. Received: {name}={list(np.ravel(g))}"
        )
    return g


def _trapezoid(values: np.ndarray, grid: np.ndarray, axis: int) -> np.ndarray:
    values = np.moveaxis(values, axis, -1)
    widths = np.diff(grid)
    return np.sum(widths * (values[..., 1:] + values[..., :-1]) / 2, axis=-1)


def surface_auc(acc: Any, eps_x_grid: Any, eps_w_grid: Any) -> float:
    """Trapezoid integral of ``acc`` over the grid divided by its area.

    For accuracies in [0, 1] the result lies in [0, 1]; a constant surface
    ``a`` gives exactly ``a``.

    Args:
        acc: array ``[len(eps_x_grid), len(eps_w_grid)]``.
        eps_x_grid: increasing input budgets (>= 2 values).
        eps_w_grid: increasing weight budgets (>= 2 values).

    Returns:
        The normalized area under the surface.

    Raises:
        ValueError: bad grids or a mis-shaped ``acc``.

    Reference:
        Tsai et al. 2021, Fig. 1 "AUC" (our reading, spec/nsr_paper.md
        section 2.7: trapezoid rule normalized by the grid area).
    """
    ex = _check_grid("eps_x_grid", eps_x_grid)
    ew = _check_grid("eps_w_grid", eps_w_grid)
    acc = np.asarray(acc, dtype=np.float64)
    if acc.shape != (len(ex), len(ew)):
        raise ValueError(
            "`acc` must have shape (len(eps_x_grid), len(eps_w_grid)). "
            f"Received: acc.shape={acc.shape}"
        )
    inner = _trapezoid(acc, ew, axis=1)
    area = (ex[-1] - ex[0]) * (ew[-1] - ew[0])
    return float(_trapezoid(inner, ex, axis=0) / area)


def accuracy_surface(
    model: Any,
    x: Any,
    y: Any,
    eps_x_grid: Any,
    eps_w_grid: Any,
    *,
    batch_size: int = 500,
    attack_labels: str = "true",
    progress: bool = False,
    **joint_kwargs: Any,
) -> tuple[np.ndarray, float]:
    """Accuracy under the joint attack on every (eps_x, eps_w) of a grid.

    Args:
        model: a Keras model or a loaded SavedModel.
        x: test inputs.
        y: true labels.
        eps_x_grid: increasing input budgets (>= 2 values, from 0 usually).
        eps_w_grid: increasing weight budgets.
        batch_size: attacked batch size; with the default per-batch weight
            perturbation (``joint_pgd``) each batch gets its own one. Pass
            ``universal=True`` for one perturbation over all of ``x``
            (computed in batches of ``batch_size``).
        attack_labels: ``"true"`` (default) or ``"predicted"``.
        progress: print one labelled line per grid point, e.g.
            ``surface eps_x=0.02 eps_w=0.001 (7/36): acc=0.8125``.
        **joint_kwargs: passed to ``joint_pgd`` (``steps``, ``step_size_x``,
            ``step_size_w``, ``relative``, ``clip_min``, ``universal``...).

    Returns:
        ``(acc, auc)``: ``acc[i, j]`` is the accuracy at
        ``(eps_x_grid[i], eps_w_grid[j])`` and ``auc = surface_auc(acc,
        ...)`` in [0, 1].

    Raises:
        ValueError: bad grids, or bad attack arguments.

    Reference:
        Tsai et al. 2021, section 4.2 and Fig. 1 (spec/nsr_paper.md
        sections 2.6-2.7).
    """
    ex = _check_grid("eps_x_grid", eps_x_grid)
    ew = _check_grid("eps_w_grid", eps_w_grid)
    if attack_labels not in ATTACK_LABELS:
        raise ValueError(
            f"`attack_labels` must be one of {ATTACK_LABELS}. Received: "
            f"attack_labels={attack_labels!r}"
        )
    universal = bool(joint_kwargs.pop("universal", False))
    acc = np.zeros((len(ex), len(ew)))
    for i, eps_x in enumerate(ex):
        for j, eps_w in enumerate(ew):
            kw = dict(joint_kwargs, eps_x=float(eps_x), eps_w=float(eps_w))
            if universal:
                y_att = None if attack_labels == "predicted" else y
                x_adv, deltas = universal_joint_pgd(
                    model, x, y_att, batch_size=batch_size, **kw
                )
                acc[i, j] = _accuracy_at(
                    model, x_adv, y, deltas, batch_size, kw
                )
            else:
                acc[i, j] = robust_accuracy(
                    model,
                    (x, y),
                    joint_pgd,
                    batch_size=batch_size,
                    progress=False,
                    attack_labels=attack_labels,
                    **kw,
                )
            if progress:
                done, total = i * len(ew) + j + 1, acc.size
                print(
                    f"surface eps_x={eps_x:g} eps_w={eps_w:g} "
                    f"({done}/{total}): acc={acc[i, j]:.4f}",
                    flush=True,
                )
    return acc, surface_auc(acc, ex, ew)


def _accuracy_at(model, x_adv, truth, deltas, batch_size, kw) -> float:
    opts = dict(
        include_bias=bool(kw.get("include_bias", False)),
        weights=kw.get("weights"),
    )
    correct = 0
    x_adv = np.asarray(x_adv)
    for s in range(0, len(x_adv), batch_size):
        logits = logits_under(model, x_adv[s : s + batch_size], deltas, **opts)
        logits = np.asarray(logits)
        labels = checks.class_indices(
            truth[s : s + batch_size], logits.shape[-1]
        ).numpy()
        correct += int(np.sum(np.argmax(logits, -1) == labels))
    return correct / len(x_adv)


def plot_surface(
    acc: Any,
    eps_x_grid: Any,
    eps_w_grid: Any,
    path: str,
    *,
    title: str | None = None,
    levels: int = 11,
    certified: Any = None,
) -> str:
    """Writes a filled contour plot of an accuracy surface to a PNG.

    Like the NSR paper's Fig. 1: eps_x on the horizontal axis, eps_w on the
    vertical one, accuracy as colour (fixed 0-1 scale so panels compare).

    Args:
        acc: array ``[len(eps_x_grid), len(eps_w_grid)]``.
        eps_x_grid: input budgets.
        eps_w_grid: weight budgets.
        path: output PNG path.
        title: optional title (e.g. with the AUC).
        levels: number of contour levels on [0, 1].
        certified: optional certified surface of the same shape
            (``certified_surface``), drawn as labelled red contour lines
            over the attacked surface's filled contours.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ex = _check_grid("eps_x_grid", eps_x_grid)
    ew = _check_grid("eps_w_grid", eps_w_grid)
    acc = np.asarray(acc, dtype=np.float64)
    fig = Figure(figsize=(4.5, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    filled = ax.contourf(
        ex, ew, acc.T, levels=np.linspace(0, 1, levels), cmap="viridis"
    )
    ax.contour(ex, ew, acc.T, levels=np.linspace(0, 1, levels), colors="k",
               linewidths=0.4)  # fmt: skip
    fig.colorbar(filled, ax=ax, label="test accuracy")
    if certified is not None:
        cert = np.asarray(certified, dtype=np.float64)
        if cert.shape != acc.shape:
            raise ValueError(
                "`certified` must have the shape of `acc`. Received: "
                f"certified.shape={cert.shape}, acc.shape={acc.shape}"
            )
        lines = ax.contour(
            ex, ew, cert.T, levels=np.linspace(0.1, 0.9, 5), colors="r",
            linewidths=1.0, linestyles="dashed",
        )  # fmt: skip
        ax.clabel(lines, fontsize=6, fmt="%.1f")
    ax.set_xlabel("ε_x")
    ax.set_ylabel("ε_w")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
