"""Sweep engines: a sweep is a list of tasks, run in process or by Ray.

A :class:`Task` is a small spec that any process can execute: the run key,
the import path of a function and its keyword arguments (plain values), the
file that marks the run finished (with the run's settings, whose
fingerprint it must hold), and the keys of the runs it must wait for.
:class:`InProcessEngine` runs the tasks in order in this process;
:class:`nsr_tf.sweep.ray_engine.RayEngine` submits one Ray task per run.
Both

* never redo a finished run (:func:`is_finished`);
* start a run only once the runs it depends on have finished, and fail it
  (without running it) when one of them failed;
* report a failing run with its error while the rest of the sweep
  completes (:class:`SweepResult`, :class:`SweepFailedError`);
* execute every run through :func:`execute_task`, which sets the same
  seeds and state in a worker as in process, so records are equal;
* log progress (:mod:`nsr_tf.sweep.progress`).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys

from absl import logging

from nsr_tf.sweep import progress
from nsr_tf.sweep import store

ENGINES = ("inprocess", "ray")


@dataclasses.dataclass(frozen=True)
class Task:
    """One run of a sweep.

    Attributes:
        key: unique run key, e.g. ``mnist/mlp1/erm/beta_inf``.
        fn: ``"package.module:function"``, called as ``fn(**kwargs)``.
        kwargs: plain keyword arguments (numbers, strings, lists, dicts).
        record: path of the file the run writes last.
        deps: keys of earlier tasks that must finish before this one starts.
        settings: the run's settings (a plain dict), or None. With settings,
            the run is finished once ``record`` is a record of them (same
            fingerprint, :func:`nsr_tf.sweep.store.record_status`); without,
            once ``record`` exists. A finished run is never redone.
        cost: the run's relative cost (> 0), which estimates of the time
            left weigh it by (:mod:`nsr_tf.sweep.progress`).
    """

    key: str
    fn: str
    kwargs: dict
    record: str
    deps: tuple[str, ...] = ()
    settings: dict | None = None
    cost: float = 1.0

    def __post_init__(self):
        if not self.cost > 0:
            raise ValueError(
                f"`cost` must be > 0. Received: cost={self.cost!r} "
                f"(task {self.key})"
            )


class SweepFailedError(RuntimeError):
    """Raised after a sweep completes with runs that failed."""


@dataclasses.dataclass
class SweepResult:
    """What a sweep did: run key -> return value, skipped keys, errors."""

    done: dict = dataclasses.field(default_factory=dict)
    skipped: list = dataclasses.field(default_factory=list)
    failed: dict = dataclasses.field(default_factory=dict)

    def raise_on_failure(self) -> None:
        """Raises :class:`SweepFailedError` naming every failed run."""
        if self.failed:
            lines = [f"  {k}: {e}" for k, e in self.failed.items()]
            raise SweepFailedError(
                f"{len(self.failed)} run(s) failed:\n" + "\n".join(lines)
            )


def is_finished(task: Task) -> bool:
    """Whether ``task``'s run is finished (the one check both engines use).

    Records of other settings are rejected before a sweep runs (its
    ``check_resume``); here such a record, like a corrupt one, only means
    the run is not finished: the run itself sets it aside or redoes it.
    """
    if task.settings is None:
        return os.path.exists(task.record)
    return store.record_status(task.record, task.settings)[0] == store.DONE


def check_tasks(tasks: list[Task]) -> None:
    """Keys are unique and every dependency names an earlier task."""
    seen = set()
    for task in tasks:
        if task.key in seen:
            raise ValueError(
                f"`tasks` must have unique keys. Received: key={task.key!r} "
                "twice"
            )
        missing = [d for d in task.deps if d not in seen]
        if missing:
            raise ValueError(
                "`tasks` must list every dependency before its dependents. "
                f"Received: {task.key!r} depends on {missing}"
            )
        seen.add(task.key)


def resolve(path: str):
    """The function named ``"package.module:function"``."""
    module, sep, name = path.partition(":")
    if not sep or not module or not name:
        raise ValueError(
            f"`fn` must be 'package.module:function'. Received: fn={path!r}"
        )
    return getattr(importlib.import_module(module), name)


def limit_threads(threads: int) -> None:
    """Caps TensorFlow's intra- and inter-op threads of this process.

    Sets ``TF_NUM_INTRAOP_THREADS`` and ``TF_NUM_INTEROP_THREADS``, which
    TensorFlow reads when its runtime starts (the Ray engine runs every run
    in a fresh worker process, before TensorFlow is imported); where
    TensorFlow is already imported, its threading config is set too, which
    takes effect unless its runtime has started.
    """
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # the runtime already started with its threads
            pass


def execute_task(fn: str, kwargs: dict, context=None, threads=None):
    """Runs one task in this process (the worker entry point of engines).

    Args:
        fn: ``"package.module:function"``.
        kwargs: its keyword arguments.
        context: the run's :class:`~nsr_tf.sweep.progress.RunContext`.
        threads: TensorFlow threads for this run (None: leave as is).
    """
    if threads:
        limit_threads(threads)
    with progress.running(context):
        return resolve(fn)(**kwargs)


def dependency_error(task: Task, result: SweepResult) -> str | None:
    """Why ``task`` cannot run (a dependency failed), or None."""
    for dep in task.deps:
        if dep in result.failed:
            return f"dependency {dep!r} failed"
    return None


def pending(tasks: list[Task], result: SweepResult) -> list[Task]:
    """The tasks not finished yet; finished ones are recorded as skipped."""
    check_tasks(tasks)
    todo = []
    for task in tasks:
        if is_finished(task):
            result.skipped.append(task.key)
        else:
            todo.append(task)
    logging.info(
        "sweep: %d runs, %d already finished, %d to do",
        len(tasks),
        len(result.skipped),
        len(todo),
    )
    return todo


class InProcessEngine:
    """Runs the tasks one after another in this process.

    An exception in a run is logged and reported, and the sweep goes on
    (``KeyboardInterrupt`` and other ``BaseException`` stop it).

    Args:
        threads: TensorFlow threads (None: TensorFlow's default).
    """

    name = "inprocess"

    def __init__(self, *, threads: int | None = None):
        self.threads = threads

    def run(self, tasks: list[Task]) -> SweepResult:
        result = SweepResult()
        todo = pending(tasks, result)
        tracker = progress.SweepProgress({t.key: t.cost for t in todo})
        for task in todo:
            error = dependency_error(task, result)
            if error is None:
                context = tracker.begin(task.key)
                try:
                    result.done[task.key] = execute_task(
                        task.fn, task.kwargs, context, self.threads
                    )
                except Exception as e:  # noqa: BLE001 - reported, not lost
                    logging.exception("run %s raised", task.key)
                    error = f"{type(e).__name__}: {e}"
            if error is not None:
                result.failed[task.key] = error
            tracker.end(task.key, error)
        return result


def make_engine(
    name: str = "inprocess",
    *,
    address: str | None = None,
    cpus_per_run: int = 1,
    gpus_per_run: float = 0.0,
    max_retries: int = 3,
):
    """The engine called ``name`` (``inprocess`` or ``ray``).

    Args:
        name: ``"inprocess"`` (default; needs no Ray) or ``"ray"``.
        address: Ray cluster to connect to (None: start a local Ray limited
            to this machine's cores).
        cpus_per_run: CPUs (and TensorFlow threads) each Ray run declares.
        gpus_per_run: GPUs each Ray run declares.
        max_retries: Ray retries of a run whose worker died.

    Raises:
        ValueError: for an unknown name, bad Ray arguments, or ``"ray"``
            where Ray is not installed.
    """
    if name not in ENGINES:
        raise ValueError(
            f"`engine` must be one of {ENGINES}. Received: engine={name!r}"
        )
    if name == "inprocess":
        return InProcessEngine()
    if importlib.util.find_spec("ray") is None:
        raise ValueError(
            '`engine` "ray" needs Ray (pip install "nsr_tf[ray]"), which is '
            "not installed. Received: engine='ray'"
        )
    from nsr_tf.sweep import ray_engine

    return ray_engine.RayEngine(
        address=address,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        max_retries=max_retries,
    )
