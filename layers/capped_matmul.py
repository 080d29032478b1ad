"""``(x @ W) / max(1, sigma_hat / beta)`` with its exact gradient, fused.

Pure numerics, no layer class: the training-time forward of ``SNDense`` for
a finite ``beta``. The value is the one of
``x @ W / max(1, spectral.dense_power_iteration(W, u)[0] / beta)``, and the
gradient is exactly the one autodiff gives for that composite (it flows
through sigma_hat, v and u', as in the reference ``sn.py``). What differs is
the cost of the backward pass on a CPU: autodiff writes d sigma / dW as two
separate outer products and adds them to the main weight gradient (three
extra passes over an ``in x out`` array); here both rank-1 terms ride along
as two extra rows of the main weight-gradient matmul (see BUILD.md for the
measured step times).

The last power step (``v = n(u W^T)``, ``wv = v W``, ``u' = n(wv)``,
``sigma = <wv, u'>``, ``n`` the l2 normalization of ``spectral``) is fused
with the matmul. Earlier steps (``iterations > 1``) run through
``spectral.dense_power_iteration`` and autodiff, which receives the fused
step's gradient with respect to its starting vector.

Derivation (``d = max(1, t)``, ``t = sigma / beta``, ``r = |wv|``,
``a = |u W^T|``, ``e`` = ``spectral.NORM_EPSILON``, ``g`` the output
gradient): ``dL/dx = (g / d) W^T``;
``dL/dW = x^T (g / d) + v^T g_wv + g_vr^T u`` with
``g_wv = c wv``, ``c = -sum(g * xW) (r + 2e) / ((r + e)^2 beta d^2)`` where
``t > 1`` (else 0), ``g_v = g_wv W^T`` and
``g_vr = g_v / (a + e) - v <g_v, v> / a``; ``dL/du = g_vr W``.

Reference:
    Farnia, Zhang and Tse, "Generalizable Adversarial Training via Spectral
    Normalization", ICLR 2019, eq. 9 and App. B.
"""

import tensorflow as tf

from layers import spectral


def capped_matmul(x, kernel, u, beta, *, iterations=1):
    """``(x @ W) / max(1, sigma_hat / beta)`` and the next power vector.

    Args:
        x: ``[..., in]`` inputs (float32, or a half type under mixed
            precision: the matmul then runs in ``x.dtype``).
        kernel: ``[in, out]`` kernel (used in float32 for sigma_hat).
        u: ``[1, out]`` power-iteration start vector (no gradient is taken
            with respect to it).
        beta: Python float > 0, finite.
        iterations: Python int >= 1, power steps (the last one fused).

    Returns:
        ``(z, u_new)``: ``[..., out]`` output in ``x.dtype`` and the
        ``[1, out]`` float32 vector to store (carries no gradient).
    """
    kernel = tf.convert_to_tensor(kernel)
    u = tf.stop_gradient(tf.cast(u, tf.float32))
    if iterations > 1:
        _, u = spectral.dense_power_iteration(
            kernel, u, iterations=iterations - 1
        )
    x = tf.convert_to_tensor(x)
    flat_x = tf.reshape(x, [-1, kernel.shape[0]])
    z, u_new = _fused_step(flat_x, kernel, u, float(beta), iterations > 1)
    out_shape = tf.concat([tf.shape(x)[:-1], [kernel.shape[1]]], axis=0)
    return tf.reshape(z, out_shape), u_new


def _fused_step(x, kernel, u, beta, u_needs_grad):
    eps = spectral.NORM_EPSILON

    @tf.custom_gradient
    def step(x, kernel, u):
        w = tf.cast(kernel, tf.float32)
        v_raw = tf.matmul(u, w, transpose_b=True)
        a = tf.sqrt(tf.reduce_sum(tf.square(v_raw)))
        v = v_raw / (a + eps)
        wv = tf.matmul(v, w)
        r = tf.sqrt(tf.reduce_sum(tf.square(wv)))
        t = r * r / ((r + eps) * beta)  # sigma / beta, sigma = r^2 / (r + e)
        divisor = tf.maximum(1.0, t)
        xw = tf.matmul(x, tf.cast(kernel, x.dtype))
        z = xw / tf.cast(divisor, x.dtype)

        def grad(gz, unused_gu):
            del unused_gu  # u_new carries no gradient.
            g_main = gz / tf.cast(divisor, gz.dtype)
            gx = tf.matmul(g_main, tf.cast(kernel, gz.dtype), transpose_b=True)
            k = tf.where(
                t > 1.0,
                -(r + 2 * eps) / ((r + eps) ** 2 * beta * divisor**2),
                0.0,
            )
            g_wv = tf.reduce_sum(tf.cast(gz * xw, tf.float32)) * k * wv
            g_v = tf.matmul(g_wv, w, transpose_b=True)
            g_vr = g_v / (a + eps)
            g_vr -= v * tf.reduce_sum(g_v * v) / tf.maximum(a, eps)
            if x.dtype == tf.float32:
                # One matmul: [x; v; g_vr]^T [g / d; g_wv; u].
                g_kernel = tf.matmul(
                    tf.concat([x, v, g_vr], axis=0),
                    tf.concat([g_main, g_wv, u], axis=0),
                    transpose_a=True,
                )
            else:
                g_kernel = tf.cast(
                    tf.matmul(x, g_main, transpose_a=True), tf.float32
                ) + tf.matmul(
                    tf.concat([v, g_vr], axis=0),
                    tf.concat([g_wv, u], axis=0),
                    transpose_a=True,
                )
            g_u = tf.matmul(g_vr, w) if u_needs_grad else None
            return gx, tf.cast(g_kernel, kernel.dtype), g_u

        return (z, tf.stop_gradient(wv / (r + eps))), grad

    return step(x, kernel, u)
