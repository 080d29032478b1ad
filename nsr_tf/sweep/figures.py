"""The SN paper's figures from saved Table 1 runs (spec ``sn_paper.md`` §8).

Every figure reads finished run directories (``record.json`` and the
``model.keras`` checkpoint) written by :mod:`nsr_tf.sweep.table1`; nothing
is retrained here. Distributions are drawn as normalized histograms.
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from nsr_tf.bounds import model_norms  # noqa: E402
from nsr_tf.sweep import figure_data  # noqa: E402
from nsr_tf.sweep import rows as rows_lib  # noqa: E402
from nsr_tf.sweep import store  # noqa: E402


def row_runs(output_dir: str, row_key: str) -> list[dict]:
    """Records of every beta of one row, sorted by beta (inf last)."""
    records = store.read_records([output_dir], prefix=row_key + "/")
    return sorted(records, key=lambda r: rows_lib.parse_beta(r["beta"]))


def runs_at(output_dir: str, row_key: str, betas) -> list[dict]:
    """Records of one row at the given betas (``"1.0"`` matches ``"1"``).

    Raises:
        ValueError: if none of ``betas`` was run for ``row_key``.
    """
    wanted = {rows_lib.parse_beta(str(b)) for b in betas}
    records = row_runs(output_dir, row_key)
    found = [r for r in records if rows_lib.parse_beta(r["beta"]) in wanted]
    if not found:
        raise ValueError(
            f"No run of {row_key} in {output_dir} has a beta in "
            f"{sorted(map(str, betas))}; the betas run are "
            f"{[r['beta'] for r in records]}. Received: betas={list(betas)}"
        )
    return found


def load_run_model(output_dir: str, record: dict) -> keras.Model:
    import layers  # noqa: F401  (registers SN layers)
    import nsr_tf.models  # noqa: F401  (registers LRN)
    import nsr_tf.training  # noqa: F401  (registers RobustModel)

    path = os.path.join(
        store.run_dir(output_dir, record["run_key"]), "model.keras"
    )
    return keras.saving.load_model(path)


def norm_gains(model, x, *, batch_size=500) -> np.ndarray:
    """Per-example ||f(x)||_2 / ||x||_2 on logits (Fig. 2a)."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(figure_data.norm_gain(logits, x))


@tf.function(reduce_retracing=True)
def _grad_norms(model_fn, x, y):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(
            tf.keras.losses.sparse_categorical_crossentropy(
                y, model_fn(x), from_logits=True
            )
        )
    g = tape.gradient(loss, x)
    return tf.norm(tf.reshape(g, [tf.shape(g)[0], -1]), axis=1)


def gradient_norms(model, x, y, *, batch_size=500) -> np.ndarray:
    """Per-example ||grad_x CE(f(x), y)||_2 on clean inputs (Fig. 2b).

    The loss is summed over the batch, so each example's input gradient is
    its own (the authors multiplied the batch-mean gradient back by the
    batch size to the same effect).
    """
    fn = lambda t: model(t, training=False)  # noqa: E731
    out = [
        _grad_norms(
            fn, tf.constant(x[i : i + batch_size]), y[i : i + batch_size]
        )
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate([o.numpy() for o in out])


def _hist(ax, values, label):
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    ax.hist(values, bins=40, density=True, histtype="step", label=label)


def _save(fig, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def fig2a(output_dir, row_key, x, path) -> str:
    """Norm gain distributions per beta for one row (paper: ERM AlexNet)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for record in row_runs(output_dir, row_key):
        model = load_run_model(output_dir, record)
        _hist(ax, norm_gains(model, x), f"β={record['beta']}")
    ax.set(xlabel="||f(x)||₂ / ||x||₂", ylabel="density", title=row_key)
    ax.legend()
    return _save(fig, path)


def fig2b(output_dir, row_keys, beta, x, y, path) -> str:
    """Gradient-norm distributions of several trainings at one beta."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    # Rows that were not run (e.g. a sweep restricted with --rows) are left
    # out; a row that was run must have been run at ``beta``.
    for row_key in row_keys:
        if not row_runs(output_dir, row_key):
            continue
        for record in runs_at(output_dir, row_key, [beta]):
            model = load_run_model(output_dir, record)
            _hist(ax, gradient_norms(model, x, y), row_key.split("/")[-1])
    ax.set(xlabel="||∇ₓ ℓ||₂", ylabel="density", title=f"β={beta}")
    ax.legend()
    return _save(fig, path)


def normalized_margins(model, record: dict, x, labels) -> np.ndarray:
    """Fig. 3's margins of one run divided by its normalizer.

    Margins are on the logits at the run's training attack (predicted
    labels; clean inputs for ERM), divided by the SN repository's
    normalizer with its per-layer factors.
    """
    attack, kwargs = rows_lib.AttackSetting(**record["attack"]).attack_call()
    inputs = x
    if attack is not None:
        fn = lambda t: model(t, training=False)  # noqa: E731
        inputs = np.concatenate(
            [
                np.asarray(attack(fn, tf.constant(x[i : i + 500]), **kwargs))
                for i in range(0, len(x), 500)
            ]
        )
    logits = model.predict(inputs, verbose=0, batch_size=500)
    phi = figure_data.fig3_normalizer(
        *model_norms.layer_norms(model),
        adversarial=attack is not None,
        factors=figure_data.fig3_factors(model),
    )
    return np.asarray(figure_data.margins(logits, labels)) / phi


def fig3(true_dir, random_dir, row_key, betas, x, y, y_random, path) -> str:
    """Margins normalized as the SN repository's Fig. 3, true vs random
    labels, one panel per beta.

    The normalizer is ``P * S`` (ERM) or ``P * (2 + sum of prefix products)
    * S`` (FGM/PGM) from the exact operator norms of each layer, with the
    repository's per-layer factors ``c_i`` (:func:`figure_data.fig3_factors`).
    For an adversarially trained row the margins are taken at the row's own
    training attack on the model's predicted labels (the repository used
    eps = 0.3 for FGM by accident; spec sn_paper.md §8, item 9).
    """
    fig, axes = plt.subplots(
        1, len(betas), figsize=(4 * len(betas), 3.2), squeeze=False
    )
    for ax, beta in zip(axes[0], betas, strict=True):
        for directory, labels, name in (
            (true_dir, y, "true"),
            (random_dir, y_random, "random"),
        ):
            for record in runs_at(directory, row_key, [beta]):
                model = load_run_model(directory, record)
                _hist(
                    ax,
                    normalized_margins(model, record, x, labels),
                    f"{name} labels",
                )
        ax.set(xlabel="margin / Φ", ylabel="density", title=f"β={beta}")
        ax.legend(fontsize=8)
    fig.suptitle(row_key)
    return _save(fig, path)


def fig4(random_dir, row_keys, path) -> str:
    """Training accuracy per epoch on random labels (from run histories).

    One colour per training scheme, one line style per beta.
    """
    fig, ax = plt.subplots(figsize=(5, 3.5))
    styles = ("-", "--", ":", "-.")
    betas = sorted(
        {r["beta"] for k in row_keys for r in row_runs(random_dir, k)},
        key=lambda b: -float(b),
    )
    for i, row_key in enumerate(row_keys):
        for record in row_runs(random_dir, row_key):
            hist = record["history"]
            key = "adv_accuracy" if "adv_accuracy" in hist else "clean_accuracy"
            ax.plot(
                np.arange(1, len(hist[key]) + 1),
                hist[key],
                color=f"C{i % 10}",
                linestyle=styles[betas.index(record["beta"]) % len(styles)],
                label=f"{row_key.split('/')[-1]} β={record['beta']}",
            )
    ax.set(xlabel="epoch", ylabel="training accuracy", title="random labels")
    ax.legend(fontsize=7)
    return _save(fig, path)


def fig5(output_dir, row_key, attack_name, eps_grid, x, y, path) -> str:
    """Test error vs attack budget for each beta of a row."""
    from nsr_tf import evaluation

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for record in row_runs(output_dir, row_key):
        model = load_run_model(output_dir, record)
        fn = lambda t, m=model: m(t, training=False)  # noqa: E731
        errors = []
        for eps in eps_grid:
            attack, kwargs = _setting(attack_name, eps).attack_call()
            acc = evaluation.robust_accuracy(
                fn, (x, y), attack, progress=False, **kwargs
            )
            errors.append(1.0 - acc)
        ax.plot(eps_grid, errors, marker="o", label=f"β={record['beta']}")
    ax.set(xlabel=f"{attack_name} ε", ylabel="test error", title=row_key)
    ax.legend()
    return _save(fig, path)


def certified_vs_eps(output_dir, row_key, eps_grid, x, y, path) -> str:
    """Certified l2 test accuracy vs eps for each beta of a row.

    The l2 Lipschitz-margin certificate (``docs/certificates.md``): one
    margin pass per model for the whole grid. Runs whose model has a layer
    without a known Lipschitz constant (LRN, branches) are left out.
    """
    from nsr_tf import evaluation

    fig, ax = plt.subplots(figsize=(5, 3.5))
    skipped = []
    for record in row_runs(output_dir, row_key):
        model = load_run_model(output_dir, record)
        try:
            acc = evaluation.certified_accuracy(model, x, y, eps=eps_grid)
        except ValueError:
            skipped.append(record["beta"])
            continue
        ax.plot(eps_grid, acc, marker="o", label=f"β={record['beta']}")
    title = row_key if not skipped else f"{row_key} (not certifiable)"
    ax.set(xlabel="l2 ε", ylabel="certified test accuracy", title=title)
    if len(skipped) < len(row_runs(output_dir, row_key)):
        ax.legend()
    return _save(fig, path)


def _setting(name: str, eps: float) -> rows_lib.AttackSetting:
    """Fig. 5's attack at budget ``eps`` (for WRM: e = 1 / (2 gamma))."""
    if eps == 0:
        return rows_lib.AttackSetting("erm")
    if name == "wrm":
        return rows_lib.AttackSetting("wrm", gamma=1.0 / (2.0 * eps))
    kind, norm = name.split("_")
    norm = 2.0 if norm == "l2" else math.inf
    return rows_lib.AttackSetting(kind, norm=norm, eps=eps)


def fig6(table_json: str, path) -> str:
    """Scatter of test accuracy with vs without SN, per training scheme."""
    table = store.read_json(table_json)["rows"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for training in rows_lib.TRAINING_LABELS.values():
        pts = [
            (r["test_acc"], r["test_acc_sn"])
            for r in table
            if r["training"] == training
            and r["test_acc"] is not None
            and r["test_acc_sn"] is not None
        ]
        if pts:
            a, b = zip(*pts, strict=True)
            ax.scatter(a, b, label=training)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="test acc, no SN", ylabel="test acc, SN (selected β)")
    ax.legend(fontsize=7)
    return _save(fig, path)
