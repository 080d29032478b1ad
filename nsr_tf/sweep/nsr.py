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

from nsr_tf.sweep import engine as engine_lib
from nsr_tf.sweep import nsr_train
from nsr_tf.sweep import store
from nsr_tf.sweep.nsr_report import auc_table
from nsr_tf.sweep.nsr_report import measured_order
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
from nsr_tf.sweep.nsr_specs import warm_start_settings
from nsr_tf.sweep.nsr_train import warm_start_path  # noqa: F401 (re-export)


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
        robust, _, reason = nsr_train.train(
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
    robust, history, reason = nsr_train.train(
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
    from nsr_tf import training  # noqa: F401 (registers RobustModel)

    model = keras.saving.load_model(model_path)
    done = dict(done, **_certify(model, arrays[2], arrays[3], budget))
    _plot(done, budget, output_dir)
    store.write_json_atomic(path, done)
    return done


def fig1_tasks(
    order, output_dir, budget, *, seed=0, data_source="", overwrite=False
) -> list:
    """Engine tasks of Fig. 1 (see :mod:`nsr_tf.sweep.tasks`).

    With ``budget.warm_start``, the first task (key ``warm_start``) trains
    the common start of every model, and every model task depends on it;
    it is left out once every model is finished. Without, the models are
    independent. Each model task is finished once its record holds
    :func:`model_settings`.
    """
    budget_kwargs = dataclasses.asdict(budget)
    init_path = None
    if budget.warm_start:
        init_path = nsr_train.warm_start_file(output_dir)
    models = [
        engine_lib.Task(
            name,
            "nsr_tf.sweep.tasks:fig1_model",
            dict(
                name=name,
                budget=budget_kwargs,
                output_dir=output_dir,
                seed=seed,
                init_path=init_path,
                data_source=data_source,
                overwrite=overwrite,
            ),
            record=os.path.join(output_dir, name, "record.json"),
            deps=("warm_start",) if init_path else (),
            settings=model_settings(
                name, budget, seed=seed, data_source=data_source
            ),
        )
        for name in order
    ]
    if not init_path or all(engine_lib.is_finished(t) for t in models):
        return [dataclasses.replace(t, deps=()) for t in models]
    warm = engine_lib.Task(
        "warm_start",
        "nsr_tf.sweep.tasks:fig1_warm_start",
        dict(
            budget=budget_kwargs,
            output_dir=output_dir,
            seed=seed,
            data_source=data_source,
            overwrite=overwrite,
        ),
        record=nsr_train.warm_start_record(output_dir),
        settings=warm_start_settings(
            budget, seed=seed, data_source=data_source
        ),
    )
    return [warm, *models]


def run_fig1(
    output_dir: str,
    budget: NSRBudget,
    *,
    models: tuple[str, ...] = tuple(CONFIGS),
    seed: int = 0,
    overwrite: bool = False,
    engine=None,
) -> str:
    """Every model in table order; writes the JSON, table and PNGs.

    Records of other settings are reported before anything trains (an
    error unless ``overwrite`` redoes them). ``engine`` runs the models
    (default: in this process, see :func:`fig1_tasks`); a model that fails
    is reported, the table is written from the others, then
    :class:`~nsr_tf.sweep.engine.SweepFailedError` is raised.
    """
    from nsr_tf import data as data_lib
    from nsr_tf.sweep import tasks as tasks_lib

    data_source = data_lib.describe_source("mnist")
    order = check_resume(
        output_dir,
        budget,
        models=models,
        seed=seed,
        data_source=data_source,
        overwrite=overwrite,
    )
    tasks = fig1_tasks(
        order,
        output_dir,
        budget,
        seed=seed,
        data_source=data_source,
        overwrite=overwrite,
    )
    result = (engine or engine_lib.InProcessEngine()).run(tasks)
    records = {
        t.key: store.read_json(t.record)
        for t in tasks
        if t.key in CONFIGS and engine_lib.is_finished(t)
    }
    if any("certified_accuracy" not in r for r in records.values()):
        arrays = tasks_lib.fig1_data(
            budget.train_examples, budget.test_examples
        )
        for name, record in records.items():
            path = os.path.join(output_dir, name, "record.json")
            records[name] = _add_certificate(
                record, path, budget, arrays, output_dir
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
    result.raise_on_failure()
    return text
