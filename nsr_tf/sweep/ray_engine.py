"""The Ray engine: one Ray task per run of a sweep.

Ray is optional (``pip install "nsr_tf[ray]"``) and imported only here, when
the engine runs. Each run is submitted as one task of
:func:`nsr_tf.sweep.engine.execute_task` that declares its CPUs and GPUs,
runs in a fresh worker process (``max_calls=1``: TensorFlow's state and GPU
memory go with it) whose TensorFlow uses as many threads as the CPUs the
run declared, and is retried up to ``max_retries`` times when its worker
dies. A run starts once the runs it depends on have finished; the driver
waits for them before submitting it.
"""

from __future__ import annotations

import os
import sys

from absl import logging

from nsr_tf.sweep import engine as engine_lib
from nsr_tf.sweep import progress


class RayEngine:
    """Submits one Ray task per unfinished run and waits for all of them.

    Args:
        address: address of a running Ray cluster (``auto`` or
            ``ray://host:10001``); None starts a local Ray on this machine
            limited to ``local_cpus`` (default: its cores) and stops it at
            the end.
        cpus_per_run: CPUs each run declares; also its TensorFlow intra- and
            inter-op threads, so runs never oversubscribe a node.
        gpus_per_run: GPUs each run declares (fractions share a GPU).
        max_retries: retries of a run whose worker process died.
        retry_exceptions: also retry runs that raised an exception.
        poll_seconds: how often the driver logs the counts while waiting.
        local_cpus: CPUs of the local Ray (None: ``os.cpu_count()``).
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        cpus_per_run: int = 1,
        gpus_per_run: float = 0.0,
        max_retries: int = 3,
        retry_exceptions: bool = False,
        poll_seconds: float = 60.0,
        local_cpus: int | None = None,
    ):
        if not (isinstance(cpus_per_run, int) and cpus_per_run >= 1):
            raise ValueError(
                "`cpus_per_run` must be an integer >= 1. "
                f"Received: cpus_per_run={cpus_per_run!r}"
            )
        if not gpus_per_run >= 0:
            raise ValueError(
                "`gpus_per_run` must be >= 0. "
                f"Received: gpus_per_run={gpus_per_run!r}"
            )
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise ValueError(
                "`max_retries` must be an integer >= 0. "
                f"Received: max_retries={max_retries!r}"
            )
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.max_retries = max_retries
        self.retry_exceptions = retry_exceptions
        self.poll_seconds = poll_seconds
        self.local_cpus = local_cpus

    def _connect(self, ray) -> bool:
        """Connects to or starts Ray; True when this call started it."""
        if ray.is_initialized():
            return False
        if self.address:
            ray.init(address=self.address)
        else:
            start_local(self.local_cpus)
        return True

    def _slots(self, ray) -> int:
        cpus = ray.cluster_resources().get("CPU", 1)
        slots = int(cpus // self.cpus_per_run)
        if self.gpus_per_run:
            gpus = ray.cluster_resources().get("GPU", 0)
            slots = min(slots, int(gpus // self.gpus_per_run))
        return max(slots, 1)

    def run(self, tasks: list[engine_lib.Task]) -> engine_lib.SweepResult:
        import ray

        result = engine_lib.SweepResult()
        todo = engine_lib.pending(tasks, result)
        if not todo:
            return result
        started = self._connect(ray)
        try:
            self._run(ray, todo, result)
        finally:
            if started:
                ray.shutdown()
        return result

    def _run(self, ray, todo, result) -> None:
        remote = ray.remote(
            num_cpus=self.cpus_per_run,
            num_gpus=self.gpus_per_run,
            max_retries=self.max_retries,
            retry_exceptions=self.retry_exceptions,
            max_calls=1,
        )(run_in_worker)
        tracker = progress.SweepProgress(
            {t.key: t.cost for t in todo}, slots=self._slots(ray)
        )
        waiting = list(todo)
        in_flight = {}  # ObjectRef -> key
        finished = set(result.skipped)
        while waiting or in_flight:
            for task in list(waiting):
                error = engine_lib.dependency_error(task, result)
                if error is not None:
                    waiting.remove(task)
                    result.failed[task.key] = error
                    tracker.end(task.key, error)
                elif all(d in finished for d in task.deps):
                    waiting.remove(task)
                    context = tracker.begin(task.key)
                    ref = remote.remote(
                        task.fn, task.kwargs, context, self.cpus_per_run
                    )
                    in_flight[ref] = task.key
            if not in_flight:
                break
            ready, _ = ray.wait(
                list(in_flight), num_returns=1, timeout=self.poll_seconds
            )
            if not ready:
                tracker.heartbeat()
                continue
            for ref in ready:
                key = in_flight.pop(ref)
                try:
                    result.done[key] = ray.get(ref)
                    finished.add(key)
                    tracker.end(key)
                except Exception as e:  # noqa: BLE001 - reported, not lost
                    error = _short_error(e)
                    logging.error("run %s failed:\n%s", key, e)
                    result.failed[key] = error
                    tracker.end(key, error)


def run_in_worker(fn, kwargs, context=None, threads=None):
    """:func:`~nsr_tf.sweep.engine.execute_task` in a Ray worker.

    Shows the run's INFO logs (per-epoch progress), which absl hides in a
    process that did not parse flags.
    """
    logging.set_verbosity(logging.INFO)
    return engine_lib.execute_task(fn, kwargs, context, threads)


def start_local(num_cpus: int | None = None, **kwargs) -> None:
    """Starts a local Ray of ``num_cpus`` CPUs (default: this machine's).

    Its workers inherit this process's environment, with ``PYTHONPATH`` set
    to this process's import path so that they import the same code (a
    source checkout, test helpers) as the driver.
    """
    import ray

    path = os.pathsep.join(os.path.abspath(p or os.curdir) for p in sys.path)
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = path
    try:
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            **kwargs,
        )
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous


def _short_error(error: Exception) -> str:
    """The exception a Ray task raised, as ``Type: message``."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"
