"""Epoch checkpoints: a run cut off mid-training resumes where it stopped.

After every epoch :class:`EpochCheckpoint` saves the model's weights with
its optimizer state (``epoch_<k>.weights.h5``; SN layers' power-iteration
vectors included) and then, atomically, a small ``state.json``: the
settings fingerprint, the epochs done, the training history so far, the
training seconds so far, whether early stopping fired and the epochs at
which the run was resumed before. :func:`restore` loads a checkpoint whose
fingerprint matches the run's settings (any other is ignored), so training
continues from the exact model and optimizer state of the last finished
epoch, with the early-stopping window spanning the epochs before.

What is not restored is the position of the data pipeline's reshuffling
seed: :func:`skip_epochs` draws past the permutations a fresh iteration
would use for the epochs already trained, so a resumed run does not repeat
its first epochs' batch orders, but the order after the resume point is
not that of an uninterrupted run (Keras' ``fit`` may draw more than one
permutation per epoch). Records say where a run was resumed.

A crash between the two writes leaves a state whose weights file is
missing, which is ignored; the runner deletes the checkpoint once the
run's record is written.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time

import keras
import tensorflow as tf

from nsr_tf.sweep import store

_STATE = "state.json"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """What a resumed run starts from."""

    epochs: int
    history: dict
    seconds: float
    stopped: bool
    resumed_at: tuple = ()


def checkpoint_dir(run_directory: str) -> str:
    """Where a run keeps its checkpoint."""
    return os.path.join(run_directory, "checkpoint")


def _weights_path(directory: str, epochs: int) -> str:
    return os.path.join(directory, f"epoch_{epochs}.weights.h5")


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and history after every epoch.

    ``history``, ``seconds`` and ``resumed_at`` cover the whole run,
    epochs before a resume included.

    Args:
        directory: checkpoint directory (created when needed).
        fingerprint: the run's settings fingerprint; :func:`restore` loads
            only a checkpoint saved with the same one.
        start: the checkpoint this fit resumes from, or None.
        early_stopping: the run's early-stopping callback, whose
            ``stopped_epoch`` is saved with the state (None when the run
            has none).
    """

    def __init__(
        self, directory, fingerprint, *, start=None, early_stopping=None
    ):
        super().__init__()
        self.directory = directory
        self.fingerprint = fingerprint
        self.early_stopping = early_stopping
        self._start = start or Checkpoint(0, {}, 0.0, False)
        self.history = {k: list(v) for k, v in self._start.history.items()}
        self.seconds = self._start.seconds
        self.resumed_at = list(self._start.resumed_at)
        if start is not None:
            self.resumed_at.append(start.epochs)
        self._timer = None

    def on_train_begin(self, logs=None):
        self._timer = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        epochs = epoch + 1
        self.seconds = self._start.seconds + time.perf_counter() - self._timer
        stopped = bool(
            self.early_stopping is not None
            and self.early_stopping.stopped_epoch is not None
        )
        os.makedirs(self.directory, exist_ok=True)
        keep = _weights_path(self.directory, epochs)
        self.model.save_weights(keep)
        state = {
            "fingerprint": self.fingerprint,
            "epochs": epochs,
            "history": self.history,
            "seconds": self.seconds,
            "stopped": stopped,
            "resumed_at": self.resumed_at,
        }
        store.write_json_atomic(os.path.join(self.directory, _STATE), state)
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            if name.endswith(".weights.h5") and path != keep:
                os.remove(path)


def restore(model, directory: str, fingerprint: str) -> Checkpoint | None:
    """Loads a matching checkpoint into ``model`` (compiled); else None.

    The optimizer is built before loading so that its state (moments,
    iteration count) is restored with the weights.
    """
    path = os.path.join(directory, _STATE)
    if not os.path.exists(path):
        return None
    try:
        state = store.read_json(path)
    except ValueError:
        return None
    weights = _weights_path(directory, state.get("epochs", -1))
    if state.get("fingerprint") != fingerprint or not os.path.exists(weights):
        return None
    model.optimizer.build(model.trainable_variables)
    model.load_weights(weights)
    return Checkpoint(
        epochs=int(state["epochs"]),
        history={k: list(v) for k, v in state["history"].items()},
        seconds=float(state["seconds"]),
        stopped=bool(state["stopped"]),
        resumed_at=tuple(state["resumed_at"]),
    )


def skip_epochs(dataset: tf.data.Dataset, epochs: int) -> None:
    """Draws the next ``epochs`` permutations of a reshuffling dataset.

    Each iteration of a ``shuffle(..., reshuffle_each_iteration=True)``
    dataset draws the next permutation of its seeded sequence; this opens
    ``epochs`` iterators (one element each) and discards them.
    """
    for _ in range(epochs):
        for _ in dataset.take(1):
            pass


def clear(directory: str) -> None:
    """Deletes a checkpoint directory (nothing when there is none)."""
    shutil.rmtree(directory, ignore_errors=True)
