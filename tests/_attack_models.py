"""Small models and NumPy references shared by the attack tests."""

import keras
import numpy as np


def linear_model(w, b, dtype="float32"):
    """logits = x @ w + b as a Keras model with fixed weights."""
    w = np.asarray(w, dtype)
    model = keras.Sequential(
        [
            keras.Input((w.shape[0],), dtype=dtype),
            keras.layers.Dense(w.shape[1], dtype=dtype),
        ]
    )
    model.layers[0].set_weights([w, np.asarray(b, dtype)])
    return model


def relu_mlp(rng, sizes=(6, 8, 3), dtype="float64", use_bias=True):
    """A tiny ReLU MLP with seeded weights, and its weights as NumPy."""
    layers = [keras.Input((sizes[0],), dtype=dtype)]
    for i, n in enumerate(sizes[1:]):
        act = "relu" if i < len(sizes) - 2 else None
        layers.append(
            keras.layers.Dense(
                n, activation=act, dtype=dtype, use_bias=use_bias
            )
        )
    model = keras.Sequential(layers)
    params = []
    for layer, (a, b) in zip(
        model.layers, zip(sizes[:-1], sizes[1:], strict=True), strict=True
    ):
        w = rng.normal(0, 1 / np.sqrt(a), (a, b))
        vals = [w]
        if use_bias:
            vals.append(rng.normal(0, 0.1, (b,)))
        layer.set_weights(vals)
        params.append(vals)
    return model, params


def np_forward_backward(x, y, kernels, biases):
    """Summed CE of a ReLU MLP; gradients w.r.t. x and the kernels."""
    hs, pres = [x], []
    h = x
    for i, (w, b) in enumerate(zip(kernels, biases, strict=True)):
        pre = h @ w + b
        pres.append(pre)
        h = np.maximum(pre, 0) if i < len(kernels) - 1 else pre
        hs.append(h)
    z = hs[-1]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    onehot = np.eye(z.shape[1])[y]
    dz = p - onehot
    gws = [None] * len(kernels)
    d = dz
    for i in reversed(range(len(kernels))):
        gws[i] = hs[i].T @ d
        d = d @ kernels[i].T
        if i > 0:
            d = d * (pres[i - 1] > 0)
    return d, gws, z


def np_l2_dir(g):
    n = np.sqrt((g.reshape(len(g), -1) ** 2).sum(1))
    return g / (n.reshape(-1, *[1] * (g.ndim - 1)) + 1e-24)
