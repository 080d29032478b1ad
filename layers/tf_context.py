"""Where the ops being built will run: XLA or TF's graph executor."""

import tensorflow as tf


def compiling_with_xla() -> bool:
    """Whether the ops being built will be compiled by XLA.

    True while tracing a ``tf.function(jit_compile=True)`` (or a function
    called from one), as TensorFlow itself checks it; False in eager mode and
    in plain graph mode. Used to pick between equivalent formulations (XLA
    and TF's executor favour different ones) and to keep custom ops, which
    XLA cannot compile, out of XLA clusters.
    """
    try:  # private API, imported here so a TF without it still imports us
        from tensorflow.python.ops import control_flow_util

        graph = tf.compat.v1.get_default_graph()
        return bool(control_flow_util.GraphOrParentsInXlaContext(graph))
    except Exception:  # fall back to the graph-mode forms
        return False
