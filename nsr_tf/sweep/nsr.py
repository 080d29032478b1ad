"""The NSR paper's Fig. 1: train its MNIST models, attack them, report.

The models, budget and settings are data in :mod:`nsr_tf.sweep.nsr_specs`
(re-exported here); this module trains, selects penalty scales, evaluates
and writes the records, the AUC table and the contour PNGs.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
from absl import logging

from nsr_tf.sweep import store
from nsr_tf.sweep.nsr_specs import AT_FAMILY  # noqa: F401 (re-export)
from nsr_tf.sweep.nsr_specs import CLIP
from nsr_tf.sweep.nsr_specs import CONFIGS
from nsr_tf.sweep.nsr_specs import DEFAULT_EPS_W  # noqa: F401 (re-export)
from nsr_tf.sweep.nsr_specs import DEFAULT_EPS_X  # noqa: F401 (re-export)
from nsr_tf.sweep.nsr_specs import DEFAULT_SCALE_GRID  # noqa: F401 (re-export)
from nsr_tf.sweep.nsr_specs import PAPER_LABELS
from nsr_tf.sweep.nsr_specs import PAPER_ORDER
from nsr_tf.sweep.nsr_specs import SCALED
from nsr_tf.sweep.nsr_specs import VALIDATION
from nsr_tf.sweep.nsr_specs import NSRBudget
from nsr_tf.sweep.nsr_specs import config_of
from nsr_tf.sweep.nsr_specs import model_settings


def _train(config, x, y, budget, epochs, seed, init_path, probe):
    from nsr_tf import data as data_lib
    from nsr_tf import models
    from nsr_tf import training

    keras.utils.set_random_seed(seed)
    model = models.build("nsr_mlp", input_shape=x.shape[1:])
    if init_path:
        model.set_weights(keras.saving.load_model(init_path).get_weights())
    robust = training.robustify(model, training.RobustConfig(**config))
    robust.compile(
        optimizer=keras.optimizers.Adam(budget.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    monitor = training.CollapseMonitor(probe)
    history = robust.fit(
        data_lib.to_dataset(x, y, batch_size=budget.batch_size, seed=seed),
        epochs=epochs,
        verbose=2,
        callbacks=[monitor],
        shuffle=False,  # the dataset reshuffles every epoch itself
    )
    hist = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return robust, hist, monitor.collapse_reason


def _warm_start_path(arrays, budget, output_dir, seed):
    """Standard trained ``budget.epochs`` epochs, the common start."""
    path = os.path.join(output_dir, "warm_start", "model.keras")
    if not os.path.exists(path):
        x_tr, y_tr = arrays[:2]
        robust, _, _ = _train(
            config_of("standard"), x_tr, y_tr, budget, budget.epochs, seed,
            None, x_tr[:500],
        )  # fmt: skip
        os.makedirs(os.path.dirname(path), exist_ok=True)
        robust.save(path)
    return path


def _accuracy(model, x, y, batch_size=1000):
    hits = 0
    for s in range(0, len(x), batch_size):
        logits = np.asarray(model(x[s : s + batch_size], training=False))
        hits += int(np.sum(np.argmax(logits, -1) == y[s : s + batch_size]))
    return hits / len(x)


def select_scale(name, arrays, budget, output_dir, *, seed=0) -> dict:
    """The paper's rule: the largest penalty scale whose clean validation
    accuracy stays within 5 points of Standard's ([P] §4.1: α, β "tuned
    for reasonable clean accuracy").

    Every trial (and Standard) trains ``select_epochs`` epochs from scratch
    on the training images minus the last ``val_examples``, which are the
    validation set. Trials are stored under ``output_dir/select``.

    Returns:
        dict with ``grid``, ``val_acc`` (per scale), ``standard_val_acc``,
        ``chosen`` (None when no scale qualifies: then the default scale is
        used) and ``validation`` (what the validation set is).
    """
    x_tr, y_tr = arrays[:2]
    n = budget.val_examples
    x_fit, y_fit, x_val, y_val = x_tr[:-n], y_tr[:-n], x_tr[-n:], y_tr[-n:]
    epochs = budget.select_epochs or budget.epochs

    def trial(model_name, scale):
        key = "standard" if scale is None else f"{model_name}_{scale:g}"
        path = os.path.join(output_dir, "select", key, "record.json")
        if os.path.exists(path):
            return store.read_json(path)["val_acc"]
        robust, _, reason = _train(
            config_of(model_name, scale), x_fit, y_fit, budget, epochs, seed,
            None, x_fit[:500],
        )  # fmt: skip
        val = _accuracy(robust, x_val, y_val)
        store.write_json_atomic(
            path, {"model": model_name, "penalty_scale": scale,
                   "epochs": epochs, "val_acc": val, "collapse": reason},
        )  # fmt: skip
        return val

    standard = trial("standard", None)
    val = {f"{s:g}": trial(name, s) for s in budget.scale_grid}
    ok = [s for s in budget.scale_grid if val[f"{s:g}"] >= standard - 0.05]
    return {
        "grid": list(budget.scale_grid),
        "val_acc": val,
        "standard_val_acc": standard,
        "chosen": max(ok) if ok else None,
        "epochs": epochs,
        "validation": VALIDATION.format(n=n),
    }


def check_resume(
    output_dir: str,
    budget: NSRBudget,
    *,
    models: tuple[str, ...] = tuple(CONFIGS),
    seed: int = 0,
    data_source: str | None = None,
    overwrite: bool = False,
) -> list[str]:
    """The models to run, in table order; writes nothing, trains nothing.

    Raises:
        ValueError: for a name that is not one of :data:`CONFIGS`.
        SettingsMismatchError: naming every model whose record has other
            settings (unless ``overwrite``).
    """
    unknown = [m for m in models if m not in CONFIGS]
    if unknown:
        raise ValueError(
            f"`models` must name models of {tuple(CONFIGS)}. "
            f"Received: models={unknown}"
        )
    if data_source is None:
        from nsr_tf import data as data_lib

        data_source = data_lib.describe_source("mnist")
    order = [m for m in CONFIGS if m in models]
    store.check_resumable(
        [
            (
                name,
                os.path.join(output_dir, name, "record.json"),
                model_settings(
                    name, budget, seed=seed, data_source=data_source
                ),
            )
            for name in order
        ],
        overwrite=overwrite,
    )
    return order


def run_model(
    name,
    arrays,
    budget: NSRBudget,
    output_dir,
    *,
    seed=0,
    init_path=None,
    data_source="",
    overwrite=False,
) -> dict:
    """Trains one model, attacks it on the grid, records it (once).

    A record of the same settings is reused; one of other settings is an
    error unless ``overwrite`` (:func:`nsr_tf.sweep.store.reuse_record`).
    """
    from nsr_tf import evaluation

    path = os.path.join(output_dir, name, "record.json")
    settings = model_settings(name, budget, seed=seed, data_source=data_source)
    done = store.reuse_record(path, settings, name=name, overwrite=overwrite)
    if done is not None:
        return _add_certificate(done, path, budget, arrays, output_dir)
    x_tr, y_tr, x_te, y_te = arrays
    selection = None
    if budget.scale_grid and name in SCALED:
        selection = select_scale(name, arrays, budget, output_dir, seed=seed)
    config = config_of(name, selection and selection["chosen"])
    epochs = budget.epochs_of(name)
    robust, history, reason = _train(
        config, x_tr, y_tr, budget, epochs, seed, init_path, x_tr[:500]
    )
    os.makedirs(os.path.join(output_dir, name), exist_ok=True)
    robust.save(os.path.join(output_dir, name, "model.keras"))
    acc, auc = evaluation.accuracy_surface(
        robust,
        x_te,
        y_te,
        budget.eps_x_grid,
        budget.eps_w_grid,
        steps=budget.attack_steps,
        step_size_x=0.01,
        step_size_w=0.0005,
        **CLIP,
    )
    acc = np.asarray(acc)
    record = {
        "model": name,
        "config": robust.robust_config.get_config(),
        "init": "warm_start" if budget.warm_start else "scratch",
        "warm_started": bool(budget.warm_start),
        "epochs": epochs,
        "scale_selection": selection,
        "budget": dataclasses.asdict(budget),
        "attack_clip": [CLIP["clip_min"], CLIP["clip_max"]],
        "history": history,
        "collapse": reason,
        "accuracy": acc.tolist(),
        "auc": float(auc),
        "clean_test_acc": float(acc[0, 0]),
        "weight_only_acc": float(acc[0, -1]),
        "test_examples": len(y_te),
    }
    record.update(_certify(robust, x_te, y_te, budget))
    _plot(record, budget, output_dir)
    record = store.with_settings(record, settings)
    store.write_json_atomic(path, record)
    return record


def _certify(model, x, y, budget) -> dict:
    """The joint interval certificate on the attack's grid (a lower bound
    of the attacked surface, ``docs/certificates.md``)."""
    from nsr_tf import evaluation

    cert, cert_auc = evaluation.certified_surface(
        model, x, y, budget.eps_x_grid, budget.eps_w_grid, **CLIP
    )
    return {
        "certified_accuracy": np.asarray(cert).tolist(),
        "certified_auc": float(cert_auc),
    }


def _plot(record, budget, output_dir):
    """Attacked accuracy as filled contours, certified as dashed lines."""
    from nsr_tf import evaluation

    name = record["model"]
    evaluation.plot_surface(
        np.asarray(record["accuracy"]),
        budget.eps_x_grid,
        budget.eps_w_grid,
        os.path.join(output_dir, f"surface_{name}.png"),
        title=(
            f"{PAPER_LABELS[name]} (AUC {record['auc']:.3f}, "
            f"certified {record['certified_auc']:.3f})"
        ),
        certified=np.asarray(record["certified_accuracy"]),
    )


def _add_certificate(done, path, budget, arrays, output_dir):
    """A finished record without the certified surface gains it, computed
    from the run's saved model (the training is not redone)."""
    model_path = os.path.join(os.path.dirname(path), "model.keras")
    if "certified_accuracy" in done or not os.path.exists(model_path):
        return done
    model = keras.saving.load_model(model_path)
    done = dict(done, **_certify(model, arrays[2], arrays[3], budget))
    _plot(done, budget, output_dir)
    store.write_json_atomic(path, done)
    return done


def measured_order(records: dict[str, dict]) -> list[str]:
    """Model names by AUC, best first."""
    return sorted(records, key=lambda n: -records[n]["auc"])


def auc_table(records: dict[str, dict]) -> str:
    """Markdown AUC table (AUC relative to AT) and the AUC orderings."""
    at = records.get("at", {}).get("auc")
    lines = [
        "| Model | init | epochs | penalty scale | clean test acc "
        "| acc at ε_x=0, max ε_w | AUC | AUC vs AT | certified AUC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rec in records.items():
        rel = f"{100 * (rec['auc'] / at - 1):+.1f}%" if at else "–"
        scale = rec["config"].get("penalty_scale")
        scale = "–" if scale is None else f"{scale:g}"
        cert = rec.get("certified_auc")
        cert = "–" if cert is None else f"{cert:.3f}"
        lines.append(
            f"| {PAPER_LABELS[name]} | {rec['init']} | {rec['epochs']} | "
            f"{scale} | {rec['clean_test_acc']:.3f} | "
            f"{rec['weight_only_acc']:.3f} | {rec['auc']:.3f} | {rel} "
            f"| {cert} |"
        )
    paper = [n for n in PAPER_ORDER if n in records]
    ours = [n for n in measured_order(records) if n in PAPER_ORDER]
    lines += [
        "",
        "AUC ordering, measured: " + " > ".join(PAPER_LABELS[n] for n in ours),
        "AUC ordering, paper: "
        + " > ".join(PAPER_LABELS[n] for n in paper)
        + " (AT+β is the paper's best, Fig. 1e)",
    ]
    return "\n".join(lines) + "\n"


def run_fig1(
    output_dir: str,
    budget: NSRBudget,
    *,
    models: tuple[str, ...] = tuple(CONFIGS),
    seed: int = 0,
    overwrite: bool = False,
) -> str:
    """Every model in table order; writes the JSON, table and PNGs.

    Records of other settings are reported before anything trains (an
    error unless ``overwrite`` redoes them).
    """
    from nsr_tf import data as data_lib

    data_source = data_lib.describe_source("mnist")
    order = check_resume(
        output_dir,
        budget,
        models=models,
        seed=seed,
        data_source=data_source,
        overwrite=overwrite,
    )
    x_tr, y_tr = data_lib.load("mnist", "train")
    x_te, y_te = data_lib.load("mnist", "test")
    if budget.train_examples:
        x_tr, y_tr = (
            x_tr[: budget.train_examples],
            y_tr[: budget.train_examples],
        )
    n_test = budget.test_examples or len(y_te)
    arrays = (x_tr, y_tr, x_te[:n_test], y_te[:n_test])
    init_path = None
    if budget.warm_start:
        init_path = _warm_start_path(arrays, budget, output_dir, seed)
    records = {}
    for name in order:
        logging.info("NSR Fig. 1: %s", name)
        records[name] = run_model(
            name,
            arrays,
            budget,
            output_dir,
            seed=seed,
            init_path=init_path,
            data_source=data_source,
            overwrite=overwrite,
        )
    text = auc_table(records)
    store.write_text_atomic(os.path.join(output_dir, "nsr_fig1_auc.md"), text)
    store.write_json_atomic(
        os.path.join(output_dir, "nsr_fig1.json"),
        {
            "budget": dataclasses.asdict(budget),
            "records": records,
            "measured_order": measured_order(records),
            "paper_order": list(PAPER_ORDER),
        },
    )
    return text
