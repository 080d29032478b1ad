"""Where a sweep is: runs finished of the total, elapsed time, time left.

The driver keeps a :class:`SweepProgress` (runs finished, running and
failed, elapsed time, an estimate of the time left from the throughput so
far). Runs differ in cost (a PGM-15 epoch is about 8x an FGM epoch), so
every estimate weighs runs by their relative cost (``Task.cost``: epochs
times gradient passes per step for Table 1). Each run executes inside a
:class:`RunContext` (run i of N, when the sweep started, its cost and the
cost of the runs not started yet) that the per-epoch callback
(:class:`nsr_tf.sweep.epoch_progress.EpochProgress`) reads, so a long run
logs lines such as::

    [run 3/16] mnist/mlp1/fgm_l2/beta_2 epoch 4/30 elapsed 0:12:03
    eta 1:40:00 (run eta 0:02:10)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time

from absl import logging


def format_duration(seconds: float | None) -> str:
    """``h:mm:ss`` (``?`` when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(max(seconds, 0.0)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What a run knows of its sweep (sent to the worker with the task).

    Attributes:
        key: the run key.
        index: 1-based position of the run among the runs to do.
        total: number of runs to do in this sweep.
        sweep_start: wall-clock time (``time.time()``) the sweep started.
        slots: runs executing at once (1 in process).
        cost: this run's relative cost (> 0).
        cost_after: total cost of the runs not started when this one
            started (in process: the runs after it).
    """

    key: str
    index: int
    total: int
    sweep_start: float
    slots: int = 1
    cost: float = 1.0
    cost_after: float | None = None

    def prefix(self) -> str:
        return f"[run {self.index}/{self.total}] {self.key}"

    def sweep_eta(self, run_left: float, run_total: float) -> float:
        """Time left to the sweep: this run's rest plus the runs after it.

        The runs after this one are assumed to take this run's projected
        time per unit of cost, ``slots`` at a time (without costs, every
        run costs 1: the runs after it each take as long as this one).
        """
        after = self.cost_after
        if after is None:
            after = max(self.total - self.index, 0) * self.cost
        return run_left + after / self.cost * run_total / max(self.slots, 1)


_CURRENT: RunContext | None = None


@contextlib.contextmanager
def running(context: RunContext | None):
    """Makes ``context`` the current run's while the block executes."""
    global _CURRENT
    previous, _CURRENT = _CURRENT, context
    try:
        yield context
    finally:
        _CURRENT = previous


def current() -> RunContext | None:
    """The context of the run executing in this process, if any."""
    return _CURRENT


class SweepProgress:
    """Driver-side counts of a sweep and the log lines that show them.

    The estimate of the time left is the elapsed time per unit of cost of
    the runs ended (throughput, so it accounts for runs executing in
    parallel) times the cost of the runs not ended yet.

    Args:
        costs: run key -> relative cost (> 0) of each run to do (finished
            runs that are skipped do not count).
        slots: runs that can execute at once (runs started beyond them
            are shown as queued).
        clock: wall-clock source (``time.time``), replaceable in tests.
    """

    def __init__(self, costs: dict, *, slots: int = 1, clock=time.time):
        self.costs = {key: float(cost) for key, cost in costs.items()}
        self.total = len(self.costs)
        self.slots = slots
        self._clock = clock
        self.start = clock()
        self.finished = 0
        self.failed = 0
        self.running: set[str] = set()
        self._started = 0
        self._cost_total = sum(self.costs.values())
        self._cost_not_started = self._cost_total
        self._cost_ended = 0.0

    def elapsed(self) -> float:
        return self._clock() - self.start

    def eta(self) -> float | None:
        """Seconds left, or ``None`` before the first run finishes."""
        if self._cost_ended == 0:
            return None
        left = self._cost_total - self._cost_ended
        return self.elapsed() / self._cost_ended * left

    def begin(self, key: str) -> RunContext:
        """Marks ``key`` as started; returns the context for its worker."""
        self._started += 1
        self.running.add(key)
        self._cost_not_started -= self.costs[key]
        context = RunContext(
            key,
            self._started,
            self.total,
            self.start,
            self.slots,
            cost=self.costs[key],
            cost_after=max(self._cost_not_started, 0.0),
        )
        logging.info("%s started (%s)", context.prefix(), self.summary())
        return context

    def end(self, key: str, error: str | None = None) -> None:
        """Marks ``key`` finished (``error=None``) or failed; logs a line."""
        self.running.discard(key)
        self._cost_ended += self.costs[key]
        if error is None:
            self.finished += 1
            logging.info("%s finished; %s", key, self.summary())
        else:
            self.failed += 1
            logging.error("%s FAILED: %s; %s", key, error, self.summary())

    def summary(self) -> str:
        running = min(len(self.running), self.slots)
        queued = len(self.running) - running
        return (
            f"{self.finished}/{self.total} finished, {running} running, "
            + (f"{queued} queued, " if queued else "")
            + f"{self.failed} failed, elapsed "
            f"{format_duration(self.elapsed())} eta "
            f"{format_duration(self.eta())}"
        )

    def heartbeat(self) -> None:
        """Logs the counts (called while waiting on long runs)."""
        logging.info("sweep: %s", self.summary())
