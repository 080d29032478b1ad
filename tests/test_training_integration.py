"""RobustModel with Keras machinery: saving, callbacks, export, distribution
and mixed precision."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from nsr_tf import models
from nsr_tf.training import RobustConfig
from nsr_tf.training import RobustModel
from nsr_tf.training import SNEarlyStopping
from nsr_tf.training import robustify

SHAPE = (4, 4, 1)
CONFIGS = {
    "pgm": dict(mode="pgm", eps=0.3, steps=3),
    "at_beta": dict(
        mode="at_beta",
        eps=0.05,
        steps=2,
        zeta_weight=0.01,
        eps_w=0.01,
        penalty_scale=1.0,
    ),
    "jiwp": dict(
        mode="jiwp",
        tau_weight=0.01,
        zeta_weight=0.01,
        eps_w=0.01,
        eps_x=0.1,
        penalty_scale=1.0,
    ),
    "joint_at": dict(mode="joint_at", eps_x=0.05, eps_w=0.005, steps=2),
}


@pytest.fixture
def data(rng):
    centers = rng.normal(size=(3, 16))
    y = rng.integers(0, 3, 64)
    x = centers[y] + 0.5 * rng.normal(size=(64, 16))
    return x.reshape((64, *SHAPE)).astype("float32"), y.astype("int64")


def _robust(name, sn_beta=1.5):
    net = models.build(
        "nsr_mlp",
        input_shape=SHAPE,
        num_classes=3,
        hidden_units=(16, 8),
        beta=sn_beta,
    )
    return robustify(net, RobustConfig(**CONFIGS[name]))


@pytest.mark.parametrize("name", ["pgm", "at_beta", "joint_at"])
def test_keras_round_trip_continues_training_identically(name, data, tmp_path):
    x, y = data
    model = _robust(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, RobustModel)
    assert loaded.robust_config == model.robust_config
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # u included
    h1 = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    h2 = loaded.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for key in h1.history:
        np.testing.assert_allclose(h1.history[key], h2.history[key], rtol=1e-5)
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_callbacks_checkpoint_tensorboard_early_stopping(data, tmp_path):
    x, y = data
    model = _robust("pgm")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    ckpt = str(tmp_path / "ckpt_{epoch}.keras")
    callbacks = [
        keras.callbacks.ModelCheckpoint(ckpt),
        keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb")),
        keras.callbacks.EarlyStopping(
            monitor="val_adv_accuracy", mode="max", patience=5
        ),
        SNEarlyStopping(window=2, threshold=0.0),  # stops after epoch 2
    ]
    hist = model.fit(
        x, y, validation_data=(x, y), epochs=10, callbacks=callbacks,
        verbose=0,
    )  # fmt: skip
    assert len(hist.history["loss"]) == 2
    assert "val_adv_accuracy" in hist.history
    assert callbacks[-1].stopped_epoch == 1
    restored = keras.saving.load_model(str(tmp_path / "ckpt_2.keras"))
    assert restored.robust_config == model.robust_config
    np.testing.assert_allclose(restored(x).numpy(), model(x).numpy(), atol=1e-6)
    assert os.listdir(tmp_path / "tb")


def test_sn_early_stopping_rule():
    cb = SNEarlyStopping()  # window 5, threshold 0.999 (SN paper §5)

    class _Model:
        stop_training = False

    cb.set_model(_Model())
    cb.on_train_begin()
    accs = [0.9, 0.9995, 1.0, 1.0, 1.0, 0.998, 1.0, 1.0]
    stopped = None
    for epoch, acc in enumerate(accs):
        cb.on_epoch_end(epoch, {"adv_accuracy": acc, "clean_accuracy": 0.5})
        if cb.model.stop_training:
            stopped = epoch
            break
    # Means of the last 5: ep4 .97990, ep5 .99950 (>= .999) -> stop at 5.
    assert stopped == 5 and cb.stopped_epoch == 5
    assert cb.history == pytest.approx(accs[:6])


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(window=0), "window"), (dict(threshold=1.5), "threshold")],
)
def test_sn_early_stopping_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SNEarlyStopping(**kwargs)


def test_sn_early_stopping_unknown_monitor():
    cb = SNEarlyStopping(monitor="robust_acc")
    with pytest.raises(ValueError, match="monitor"):
        cb.on_epoch_end(0, {"loss": 1.0})


def test_export_serves_the_clean_logits(data, tmp_path):
    x, y = data
    model = _robust("jiwp")
    model.compile(optimizer="adam")
    model.fit(x, y, epochs=1, verbose=0)
    model.export(str(tmp_path / "saved"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(
        served.serve(x).numpy(), model(x, training=False).numpy(), atol=1e-6
    )


@pytest.mark.parametrize("name", ["pgm", "at_beta", "joint_at"])
def test_mixed_precision_smoke(name, data):
    x, y = data
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _robust(name)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        before = [
            la.u.numpy().copy() for la in model.layers if hasattr(la, "u")
        ]
        hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0).history
        assert model(x).dtype == "float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.all(np.isfinite(hist["loss"]))
    assert hist["loss"][-1] < hist["loss"][0]
    after = [la.u for la in model.layers if hasattr(la, "u")]
    assert all(u.dtype == "float32" for u in after)
    assert any(np.any(a.numpy() != b) for a, b in zip(after, before, strict=1))


_DISTRIBUTED = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from nsr_tf import models
    from nsr_tf.training import RobustConfig, robustify

    configs = json.loads(sys.argv[1])
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16))
    y = rng.integers(0, 3, 64)
    x = (centers[y] + 0.5 * rng.normal(size=(64, 16))).reshape(64, 4, 4, 1)
    x = x.astype("float32")

    def make(cfg):
        net = models.build("nsr_mlp", input_shape=(4, 4, 1), num_classes=3,
                           hidden_units=(16, 8), beta=1.5)
        model = robustify(net, RobustConfig(**cfg))
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        return model

    out = {}
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for name, cfg in configs.items():
        keras.utils.set_random_seed(0)
        single = make(cfg)
        init = [w.numpy() for w in single.weights]
        with strategy.scope():
            dist = make(cfg)
            dist.set_weights(init)
        h1 = single.fit(x, y, batch_size=32, epochs=2, shuffle=False,
                        verbose=0).history
        h2 = dist.fit(x, y, batch_size=32, epochs=2, shuffle=False,
                      verbose=0).history
        ev = dist.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
        out[name] = {
            "replicas": strategy.num_replicas_in_sync,
            "weight_diff": max(float(np.max(np.abs(a.numpy() - b.numpy())))
                               for a, b in zip(single.weights, dist.weights)),
            "loss_single": h1["loss"], "loss_dist": h2["loss"],
            "eval_finite": bool(np.isfinite(ev["loss"])),
        }
    print("RESULT" + json.dumps(out))
    """
)


def test_mirrored_strategy_matches_single_device():
    """2 logical CPUs (configured before TF starts, so in a subprocess):
    the same steps give the same weights and losses as on one device."""
    configs = {k: CONFIGS[k] for k in ("pgm", "at_beta")}
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _DISTRIBUTED, json.dumps(configs)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT") :])
    for name, r in result.items():
        assert r["replicas"] == 2
        assert r["weight_diff"] < 1e-5, (name, r)
        np.testing.assert_allclose(r["loss_dist"], r["loss_single"], rtol=1e-5)
        assert r["eval_finite"]
