"""The SN paper's early stopping rule as a Keras callback."""

import keras
import numpy as np


class SNEarlyStopping(keras.callbacks.Callback):
    """Stops once the mean training accuracy of the last epochs is high.

    After each epoch the monitored (batch-averaged) training accuracy is
    recorded; training stops as soon as the mean over the last ``window``
    epochs is >= ``threshold``. For adversarial modes the SN paper monitors
    the accuracy on the adversarial examples.

    Args:
        monitor: log key to watch. Default: ``"adv_accuracy"`` when the logs
            have it (adversarial modes of :class:`RobustModel`), else
            ``"clean_accuracy"``, else ``"accuracy"``.
        window: number of epochs averaged (>= 1).
        threshold: accuracy to reach, in [0, 1].
        past: the training history (log key -> values per epoch) of the
            epochs trained before this fit, when a run resumes; the window
            spans them.

    Raises:
        ValueError: bad ``window`` or ``threshold``; a monitored key missing
            from the logs (at the end of the first epoch).

    Reference:
        Farnia et al., ICLR 2019, training template (``TEMPLATE``): stop when
        the mean of the last 5 epochs' training accuracy is >= 0.999; spec
        sn_paper.md §5.
    """

    def __init__(self, monitor=None, *, window=5, threshold=0.999, past=None):
        super().__init__()
        if isinstance(window, bool) or int(window) != window or window < 1:
            raise ValueError(
                f"`window` must be an integer >= 1. Received: window={window}"
            )
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(
                "`threshold` must be in [0, 1]. "
                f"Received: threshold={threshold}"
            )
        self.monitor = monitor
        self.window = int(window)
        self.threshold = float(threshold)
        self.past = {
            k: [float(v) for v in vals] for k, vals in (past or {}).items()
        }
        self.history = []
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.history = None
        self.stopped_epoch = None

    def _key(self, logs):
        if self.monitor is not None:
            keys = (self.monitor,)
        else:
            keys = ("adv_accuracy", "clean_accuracy", "accuracy")
        for key in keys:
            if key in logs:
                return key
        raise ValueError(
            f"`monitor` must name a training log entry, one of {keys}. "
            f"Received: logs with keys {sorted(logs)}"
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        key = self._key(logs)
        if self.history is None:
            self.history = list(self.past.get(key, ()))
        self.history.append(float(logs[key]))
        recent = self.history[-self.window :]
        if len(recent) == self.window and np.mean(recent) >= self.threshold:
            self.stopped_epoch = epoch
            self.model.stop_training = True
