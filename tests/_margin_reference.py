"""Independent NumPy float64 reference for nsr_tf.bounds.margin's tests.

Written from the formulas of spec/nsr_bounds.md and the paper's Theorem 2
with explicit out x in matrices W^m = K^m.T, explicit shifted matrices
W^{m*} (including the per-input ``sgn(x)`` shift of layer 1) and plain
loops; it shares no code with the library.
"""

import numpy as np


def relu(v):
    return np.maximum(v, 0.0)


def ref_pairwise(kernels, x, eps_x, eps_w, variant):
    """Returns tau (K, K) and zeta (B, K, K), diagonal zeroed."""
    ws = [np.asarray(k, np.float64).T for k in kernels]  # out x in
    n_layers = len(ws)
    eps = list(eps_w) if np.ndim(eps_w) else [eps_w] * n_layers
    norms = [np.abs(w).sum(axis=1).max() for w in ws]
    fan = [w.shape[1] for w in ws]
    last = ws[-1]
    k = last.shape[0]
    dist = np.array(
        [[np.abs(last[i] - last[j]).sum() for j in range(k)] for i in range(k)]
    )
    prod = 1.0
    for m in range(n_layers - 1):
        prod *= norms[m] + fan[m] * eps[m]
    tau = eps_x * (dist + 2 * fan[-1] * eps[-1]) * prod
    np.fill_diagonal(tau, 0.0)
    zetas = []
    for xb in np.asarray(x, np.float64):
        zetas.append(_ref_zeta_one(ws, xb, eps, norms, dist, variant))
    return tau, np.stack(zetas)


def _ref_zeta_one(ws, x, eps, norms, dist, variant):
    n_layers = len(ws)
    k = dist.shape[0]
    if variant == "interval_exact":
        zeta = _ref_interval_one(ws, x, eps)
        np.fill_diagonal(zeta, 0.0)
        return zeta
    if variant == "interval":
        # Spec's "ibp": the interval upper bounds in place of h^{k*}.
        hstar = [x] + _ref_ibp(ws, x, eps)[0]
    else:
        # h^{k*}: W^{1*} = W^1 + sgn(x) eps_1; W^{m*} = W^m + eps_m (eq. 22)
        # or max(W^m + eps_m, 0) (sound).
        w1 = ws[0] + np.sign(x)[None, :] * eps[0]
        hstar = [x, relu(w1 @ x)]
        for m in range(1, n_layers - 1):
            wm = ws[m] + eps[m]
            if variant == "sound":
                wm = np.maximum(wm, 0.0)
            hstar.append(relu(wm @ hstar[-1]))
    l1 = [np.abs(h).sum() for h in hstar]  # l1[k] = ||h^{k*}||_1, h^0* = x
    big_l = n_layers

    def n_of(m):  # 1-based layer index
        return norms[m - 1]

    def e_of(m):
        return eps[m - 1]

    if variant in ("paper", "lemma"):
        # Bracket exactly as printed (Theorem 2 / Lemma 1).
        first = e_of(1) * l1[0]
        for layer in range(1, big_l - 1):  # prod_{l=1}^{L-2} ||W^{L-l}||
            first *= n_of(big_l - layer)
        middle = 0.0
        for kk in range(1, big_l - 2):  # k = 1 .. L-3
            p = 1.0
            for m in range(kk + 2, big_l):
                p *= n_of(m)
            middle += p * e_of(kk + 1) * l1[kk]
        bracket = first + middle + e_of(big_l - 1) * l1[big_l - 2]
        last_term = 2 * e_of(big_l) * l1[big_l - 1]
        if variant == "paper":
            zeta = dist * (bracket + last_term)
        else:
            zeta = dist * bracket + last_term
    else:
        # Corrected formula of spec section 1 (sum over k = 1 .. L-2).
        first = e_of(1) * l1[0]
        for m in range(2, big_l):
            first *= n_of(m)
        middle = 0.0
        for kk in range(1, big_l - 1):
            p = 1.0
            for m in range(kk + 2, big_l):
                p *= n_of(m)
            middle += e_of(kk + 1) * l1[kk] * p
        zeta = dist * (first + middle) + 2 * e_of(big_l) * l1[big_l - 1]
    zeta = np.array(zeta, dtype=np.float64)
    assert zeta.shape == (k, k)
    np.fill_diagonal(zeta, 0.0)
    return zeta


def _ref_ibp(ws, x, eps):
    """Spec's ibp recursion: upper bounds [u^1, ..., u^{L-1}], and the last
    lower bound and clean hidden layer."""
    s = eps[0] * np.abs(x).sum()
    z = ws[0] @ x
    lo, up, h = relu(z - s), relu(z + s), relu(z)
    uppers = [up]
    for m in range(1, len(ws) - 1):
        w, e = ws[m], eps[m]
        new_up = relu(w @ lo + e * lo.sum() + np.maximum(w + e, 0) @ (up - lo))
        new_lo = relu(
            w @ lo - e * lo.sum() - np.maximum(-(w - e), 0) @ (up - lo)
        )
        up, lo, h = new_up, new_lo, relu(w @ h)
        uppers.append(up)
    return uppers, lo, h


def _ref_interval_one(ws, x, eps):
    """Spec's ibp recursion, then exact max of the last layer over the box."""
    uppers, lo, h = _ref_ibp(ws, x, eps)
    up = uppers[-1]
    last, e = ws[-1], eps[-1]
    k = last.shape[0]
    zeta = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            total = 0.0
            for r in range(last.shape[1]):
                c = last[i, r] - last[j, r]
                best = max((c + 2 * e) * up[r], (c + 2 * e) * lo[r])
                total += best - c * h[r]
            zeta[i, j] = total
    return zeta
