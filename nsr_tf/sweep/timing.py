"""Tables 2 and 3 of the SN paper: training-time ratios, side by side.

Table 2 compares training with SN against the same network without it (the
frozen plain twin: the same layers without power iteration); Table 3 the
operator SN against the kernel (Miyato) SN. Each pair trains the same number
of epochs on the same data, one after the other in one process, after one
warm-up step each so that graph tracing is not timed (the paper timed only
its ``train()`` call, spec ``sn_paper.md`` §9).
"""

from __future__ import annotations

import time

import keras
import numpy as np

from nsr_tf import data as data_lib
from nsr_tf import export
from nsr_tf import models
from nsr_tf import training
from nsr_tf.sweep import rows as rows_lib
from nsr_tf.sweep.runner import make_optimizer


def _compiled(model, row, c2):
    setting = rows_lib.attack_setting(row.dataset, row.training, c2)
    robust = training.robustify(
        model, training.RobustConfig(**setting.as_config_kwargs())
    )
    robust.compile(
        optimizer=make_optimizer(row.optimizer),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return robust


class _EpochTimer(keras.callbacks.Callback):
    """Seconds from the start to the end of each training epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def time_fits(robusts, x, y, *, epochs: int, batch_size: int) -> list[float]:
    """Seconds of training epochs of each model, epoch by epoch in turn.

    Every model first takes one warm-up step (tracing); then epoch ``e`` of
    model 1, epoch ``e`` of model 2, ... are run alternately, so load and
    clock drift on a shared machine fall on all models alike. Each model
    sees the same batches in the same order. Only the epochs themselves are
    timed (``on_epoch_begin`` to ``on_epoch_end``), not ``fit``'s set-up and
    tear-down around them, which a single ``fit(epochs=N)`` pays once.
    """
    datasets = [
        data_lib.to_dataset(x, y, batch_size=batch_size, seed=0)
        for _ in robusts
    ]
    for robust, dataset in zip(robusts, datasets, strict=True):
        robust.fit(dataset.take(1), epochs=1, verbose=0, shuffle=False)
    timers = [_EpochTimer() for _ in robusts]
    for _ in range(epochs):
        for robust, dataset, timer in zip(
            robusts, datasets, timers, strict=True
        ):
            robust.fit(
                dataset, epochs=1, verbose=0, shuffle=False, callbacks=[timer]
            )
    return [sum(timer.seconds) for timer in timers]


def conv_operator_sigmas(model, *, iterations: int = 200) -> list[float]:
    """Operator spectral norm of each conv layer's effective kernel.

    For the kernel method this is the true norm of the convolution that
    the network applies, which Table 3 / App. A.1 compare with beta.
    """
    from layers import SNConv2D
    from layers import conv_operator_norm
    from layers import effective_kernel

    sigmas = []
    for layer in model.layers:
        if isinstance(layer, SNConv2D):
            sigmas.append(
                conv_operator_norm(
                    effective_kernel(layer),
                    tuple(layer.input.shape[1:]),
                    strides=layer.strides,
                    padding=layer.padding,
                    dilation_rate=layer.dilation_rate,
                    iterations=iterations,
                )
            )
    return sigmas


def table2_row(row, beta, x, y, c2, *, epochs, batch_size, seed=0) -> dict:
    """Runtime with SN (``beta``) vs the same network without SN."""
    keras.utils.set_random_seed(seed)
    sn_model = models.build(row.arch, beta=beta, input_shape=x.shape[1:])
    plain_model = export.plain_twin(sn_model)
    plain_s, sn_s = time_fits(
        [_compiled(plain_model, row, c2), _compiled(sn_model, row, c2)],
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
    )
    return {
        "row_key": row.key,
        "beta": rows_lib.format_beta(beta),
        "no_sn_seconds": plain_s,
        "sn_seconds": sn_s,
        "ratio": sn_s / plain_s,
    }


def table3_row(
    row, beta, arrays, *, epochs, batch_size, eval_examples=None, seed=0
) -> dict:
    """Operator vs kernel SN: runtime ratio, conv sigmas and accuracy."""
    from nsr_tf.sweep.runner import attack_accuracy

    setting = rows_lib.attack_setting(row.dataset, row.training, arrays.c2)
    out = {"row_key": row.key, "beta": rows_lib.format_beta(beta)}
    methods = ("operator", "kernel")
    robusts = []
    for method in methods:
        keras.utils.set_random_seed(seed)
        model = models.build(
            row.arch,
            beta=beta,
            method=method,
            input_shape=arrays.x_train.shape[1:],
        )
        robusts.append(_compiled(model, row, arrays.c2))
    seconds = time_fits(
        robusts,
        arrays.x_train,
        arrays.y_train,
        epochs=epochs,
        batch_size=batch_size,
    )
    for method, robust, sec in zip(methods, robusts, seconds, strict=True):
        out[f"{method}_seconds"] = sec
        out[f"{method}_conv_sigmas"] = conv_operator_sigmas(robust)
        n = eval_examples
        out[f"{method}_test_acc"] = attack_accuracy(
            robust, arrays.x_test[:n], arrays.y_test[:n], setting
        )
    out["ratio"] = out["operator_seconds"] / out["kernel_seconds"]
    return out


def subset(x: np.ndarray, y: np.ndarray, n: int | None):
    return (x, y) if not n else (x[:n], y[:n])
