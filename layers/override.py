"""Substitution of the effective kernel of a layer inside a block of code.

This is the one mechanism by which weight perturbations reach the forward
pass of our spectrally-normalized layers: the joint attack, the joint
training mode and the export all use it. Inside ``kernel_override({layer:
kernel})`` the layer's ``call`` uses ``kernel`` as its effective kernel (the
matrix actually applied to the input) instead of ``W / max(1, sigma/beta)``,
and it never updates its power-iteration state. ``layers.effective_kernel``
reads the kernel a layer applies, the substituted one included.

The override is read when ``call`` runs in Python, i.e. while eager code runs
or while a ``tf.function`` is being traced. Enter the block *inside* the
``tf.function`` whose forward pass should see the substitution.
"""

import contextlib
import threading

_STATE = threading.local()


def _stack():
    if not hasattr(_STATE, "stack"):
        _STATE.stack = []
    return _STATE.stack


@contextlib.contextmanager
def kernel_override(mapping):
    """Uses the given effective kernels for the given layers in this block.

    Args:
        mapping: dict from layer object to a tensor shaped like the layer's
            kernel. Layers not in the mapping are unaffected.

    Yields:
        None.
    """
    _stack().append({id(layer): kernel for layer, kernel in mapping.items()})
    try:
        yield
    finally:
        _stack().pop()


def get_kernel_override(layer):
    """Returns the kernel substituted for ``layer``, or None."""
    for frame in reversed(_stack()):
        if id(layer) in frame:
            return frame[id(layer)]
    return None
