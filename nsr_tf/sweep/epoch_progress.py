"""A Keras callback logging epoch i/N, elapsed time and time left."""

from __future__ import annotations

import time

import keras
from absl import logging

from nsr_tf.sweep import progress


class EpochProgress(keras.callbacks.Callback):
    """Logs one line per epoch: run i of N, epoch, elapsed time and ETA.

    Inside a sweep (a current :class:`~nsr_tf.sweep.progress.RunContext`)
    the line gives the sweep's elapsed time and time left, and the run's
    time left; outside one, the run's alone. The run's time left assumes
    every remaining epoch takes the mean epoch time so far (early stopping
    can only shorten it).

    Args:
        epochs: epochs the run trains at most.
        clock: wall-clock source, replaceable in tests.
    """

    def __init__(self, epochs: int, *, clock=time.time):
        super().__init__()
        self.epochs = epochs
        self._clock = clock
        self._start = None
        self._first = None
        self.lines: list[str] = []

    def on_train_begin(self, logs=None):
        self._start = self._clock()
        self._first = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._first is None:
            self._first = epoch  # > 0 when a run resumes

    def on_epoch_end(self, epoch, logs=None):
        now = self._clock()
        run_elapsed = now - self._start
        per_epoch = run_elapsed / (epoch + 1 - (self._first or 0))
        run_left = per_epoch * (self.epochs - epoch - 1)
        context = progress.current()
        fmt = progress.format_duration
        if context is None:
            line = (
                f"epoch {epoch + 1}/{self.epochs} elapsed {fmt(run_elapsed)} "
                f"eta {fmt(run_left)}"
            )
        else:
            eta = context.sweep_eta(run_left, per_epoch * self.epochs)
            line = (
                f"{context.prefix()} epoch {epoch + 1}/{self.epochs} "
                f"elapsed {fmt(now - context.sweep_start)} eta {fmt(eta)} "
                f"(run eta {fmt(run_left)})"
            )
        self.lines.append(line)
        logging.info("%s", line)
