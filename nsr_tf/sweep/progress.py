"""Where a sweep is: runs finished of the total, elapsed time, time left.

The driver keeps a :class:`SweepProgress` (runs finished, running and
failed, elapsed time, an estimate of the time left from the throughput so
far). Each run executes inside a :class:`RunContext` (run i of N, when the
sweep started) that the per-epoch callback
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
    """

    key: str
    index: int
    total: int
    sweep_start: float
    slots: int = 1

    def prefix(self) -> str:
        return f"[run {self.index}/{self.total}] {self.key}"

    def sweep_eta(self, run_left: float, run_total: float) -> float:
        """Time left to the sweep: this run's rest plus the runs after it.

        The runs after this one are assumed to take as long as this one is
        projected to, ``slots`` at a time.
        """
        after = max(self.total - self.index, 0)
        return run_left + after * run_total / max(self.slots, 1)


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

    The estimate of the time left is the elapsed time per finished run
    (throughput, so it accounts for runs executing in parallel) times the
    runs not finished yet.

    Args:
        total: runs to do (finished runs that are skipped do not count).
        slots: runs that can execute at once (runs started beyond them
            are shown as queued).
        clock: wall-clock source (``time.time``), replaceable in tests.
    """

    def __init__(self, total: int, *, slots: int = 1, clock=time.time):
        self.total = total
        self.slots = slots
        self._clock = clock
        self.start = clock()
        self.finished = 0
        self.failed = 0
        self.running: set[str] = set()
        self._started = 0

    def elapsed(self) -> float:
        return self._clock() - self.start

    def eta(self) -> float | None:
        """Seconds left, or ``None`` before the first run finishes."""
        ended = self.finished + self.failed
        if ended == 0:
            return None
        return self.elapsed() / ended * (self.total - ended)

    def begin(self, key: str) -> RunContext:
        """Marks ``key`` as started; returns the context for its worker."""
        self._started += 1
        self.running.add(key)
        context = RunContext(
            key, self._started, self.total, self.start, self.slots
        )
        logging.info("%s started (%s)", context.prefix(), self.summary())
        return context

    def end(self, key: str, error: str | None = None) -> None:
        """Marks ``key`` finished (``error=None``) or failed; logs a line."""
        self.running.discard(key)
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
