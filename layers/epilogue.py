"""The SN dense epilogue ``act(xw * scale + bias)`` as one native op.

TensorFlow runs this epilogue as three ops (Mul, BiasAdd and the activation),
each a pass over the batch x units output, and its gradient as four or five
more; a plain ``Dense`` layer gets the forward fused into its oneDNN matmul,
which the SN layer cannot use (its output scale is a tensor computed in the
same step, and the gradient through sigma_hat needs ``xw`` itself). The C++
kernels in ``sn_epilogue.cc`` do each direction in one pass.

The source is compiled with the system C++ compiler (``$CXX``, else ``c++``)
against the installed TensorFlow's headers the first time it is needed and
cached under ``$NSR_TF_CACHE`` (default ``~/.cache/nsr_tf``), keyed by the
source, the TensorFlow version and the CPU. Where that fails (no compiler, not
Linux, ``NSR_TF_NATIVE=0``) ``available()`` is False, one warning says why,
and ``SNDense`` computes the same maths with TensorFlow's own ops.

``SNDense`` uses the op only in training calls (``training=True``) on float32
inputs, on CPU and outside XLA: inference graphs, and so exported
SavedModels, never contain it.
"""

import contextlib
import functools
import hashlib
import os
import pathlib
import subprocess
import sys
import threading
import warnings

import keras
import tensorflow as tf

from layers.tf_context import compiling_with_xla

#: Activations the op implements, by the names it takes.
ACTIVATIONS = ("linear", "relu", "elu")

_SOURCE = pathlib.Path(__file__).with_name("sn_epilogue.cc")
_disabled = 0
# Replicas of a MirroredStrategy trace in parallel threads: build once.
_build_lock = threading.Lock()
_FLAGS = ("-shared", "-fPIC", "-O3", "-march=native", "-fno-trapping-math")


def activation_name(activation) -> str | None:
    """The op's name for a Keras activation function, or None if it has none.

    Only the plain functions count (``keras.activations.linear``, ``relu``
    and ``elu`` with their default arguments, which is what the layers'
    ``activation="relu"`` etc. resolve to).
    """
    known = {
        keras.activations.linear: "linear",
        keras.activations.relu: "relu",
        keras.activations.elu: "elu",
    }
    return known.get(activation)


def available() -> bool:
    """Whether the native op could be built and loaded on this machine."""
    return _library() is not None


@contextlib.contextmanager
def disabled():
    """Graphs built inside this context use TensorFlow's ops, not the op.

    For comparisons (the benchmark's ``sn_tf`` variant, the tests); a
    ``tf.function`` traced inside keeps its ops after the context exits.
    """
    global _disabled
    _disabled += 1
    try:
        yield
    finally:
        _disabled -= 1


def usable(dtype) -> bool:
    """Whether ops being built now for inputs of ``dtype`` may use the op.

    float32 only, outside XLA and ``disabled()``, and with no GPU visible
    (the kernel is CPU-only; placing it between GPU ops would copy the batch
    twice).
    """
    return (
        not _disabled
        and tf.as_dtype(dtype) == tf.float32
        and not compiling_with_xla()
        and not tf.config.list_logical_devices("GPU")
        and available()
    )


def sn_epilogue(xw, scale, bias, activation: str) -> tf.Tensor:
    """``act(xw * scale + bias)`` in one pass (differentiable).

    Args:
        xw: ``[rows, n]`` float32.
        scale: float32 scalar.
        bias: ``[n]`` float32.
        activation: one of ``ACTIVATIONS``.

    Raises:
        ValueError: on an unknown activation.
        RuntimeError: if the op is not available.
    """
    return _op().nsr_sn_epilogue(
        xw, scale, bias, activation=_check_activation(activation)
    )


def sn_epilogue_grad(gy, y, xw, scale, activation: str):
    """Gradients of ``sn_epilogue`` from its output ``y`` and input ``xw``.

    Returns:
        ``(g_xw, g_scale, g_bias)``: ``g_pre * scale``, ``sum(g_pre * xw)``
        (accumulated in float64) and the column sums of ``g_pre``, where
        ``g_pre = gy * act'(pre)`` is read off ``y`` as TensorFlow's
        ``EluGrad`` / ``ReluGrad`` do.
    """
    return _op().nsr_sn_epilogue_grad(
        gy, y, xw, scale, activation=_check_activation(activation)
    )


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {ACTIVATIONS}. "
            f"Received: activation={activation!r}"
        )
    return activation


def _op():
    lib = _library()
    if lib is None:
        raise RuntimeError(
            "The native SN epilogue op is not available on this machine; "
            "check `layers.epilogue.available()` first."
        )
    return lib


def _library():
    """Builds (once, cached on disk) and loads the op library, or None."""
    with _build_lock:
        return _load_library()


@functools.cache
def _load_library():
    if os.environ.get("NSR_TF_NATIVE", "1") == "0":
        return None
    try:
        path = _built_library()
        lib = tf.load_op_library(str(path))
    except Exception as error:  # noqa: BLE001 (any failure means: fall back)
        warnings.warn(
            "nsr_tf: the native SN epilogue op is unavailable "
            f"({type(error).__name__}: {str(error)[:300]}); SN dense layers "
            "use TensorFlow ops for it (same maths, slower training step).",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    _register_gradient()
    return lib


def _built_library() -> pathlib.Path:
    if not sys.platform.startswith("linux"):
        raise OSError(f"native ops are built on Linux only, not {sys.platform}")
    cxx = os.environ.get("CXX", "c++")
    flags = [*_FLAGS, *tf.sysconfig.get_compile_flags()]
    link = list(tf.sysconfig.get_link_flags())
    key = hashlib.sha256()
    for part in (_SOURCE.read_bytes(), tf.__version__, cxx, *flags, *link):
        key.update(part if isinstance(part, bytes) else part.encode())
    key.update(_cpu_fingerprint())
    cache = pathlib.Path(
        os.environ.get("NSR_TF_CACHE", pathlib.Path.home() / ".cache/nsr_tf")
    )
    path = cache / f"sn_epilogue_{key.hexdigest()[:20]}.so"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    command = [cxx, *flags, "-w", str(_SOURCE), "-o", str(tmp), *link]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise OSError(f"{' '.join(command[:2])} ... failed: {result.stderr}")
    os.replace(tmp, path)  # atomic: concurrent builders agree
    return path


def _cpu_fingerprint() -> bytes:
    # -march=native code must not be loaded on another CPU sharing the cache.
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return b""
    lines = [
        line
        for line in text.splitlines()
        if line.startswith(("flags", "model name"))
    ]
    return "\n".join(sorted(set(lines))).encode()


def _register_gradient():
    def grad(op, gy):
        xw, scale, _ = op.inputs
        return sn_epilogue_grad(
            gy, op.outputs[0], xw, scale, op.get_attr("activation").decode()
        )

    try:
        tf.RegisterGradient("NsrSnEpilogue")(grad)
    except KeyError:  # already registered in this process
        pass
