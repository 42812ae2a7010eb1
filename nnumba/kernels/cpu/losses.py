"""Loss kernels: each writes per-sample losses and the gradient w.r.t. the prediction.

A mini-batch's loss is a few thousand numbers: a parallel launch costs more
than the work, so these kernels are serial. ``scale`` multiplies the gradient
(1/N for a mean, 1 for a sum, B/N when gradient descent accumulates batches).
"""
import numpy as np
from numba import njit

_OPTS = dict(cache=True, fastmath=False)  # exp/log of extreme logits must stay exact


@njit(**_OPTS)
def softmax_cross_entropy(z, labels, scale, losses, dl_dz):
    """z (N, C) logits, labels (N,) ints in [0, C): -log softmax(z)[label], stable."""
    n, c = z.shape
    for i in range(n):
        m = z[i, 0]
        for j in range(1, c):
            if z[i, j] > m:
                m = z[i, j]
        total = z.dtype.type(0)
        for j in range(c):
            e = np.exp(z[i, j] - m)
            dl_dz[i, j] = e
            total += e
        losses[i] = np.log(total) + m - z[i, labels[i]]
        inv = scale / total
        for j in range(c):
            dl_dz[i, j] *= inv
        dl_dz[i, labels[i]] -= scale


@njit(**_OPTS)
def squared_error(yhat, y, scale, losses, dl_dyhat):
    """yhat, y (N, K): per-sample sum of squares; gradient 2 (yhat - y) * scale."""
    two = yhat.dtype.type(2)
    for i in range(yhat.shape[0]):
        s = yhat.dtype.type(0)
        for j in range(yhat.shape[1]):
            d = yhat[i, j] - y[i, j]
            s += d * d
            dl_dyhat[i, j] = two * d * scale
        losses[i] = s


@njit(**_OPTS)
def logistic(yhat, y, scale, losses, dl_dyhat):
    """yhat (N,), y (N,) in {-1, 1}: -log sigmoid(y yhat) = log(1 + e^{-y yhat})."""
    one = yhat.dtype.type(1)
    for i in range(yhat.shape[0]):
        t = y[i] * yhat[i]
        # softplus(-t) without overflow: max(-t, 0) + log1p(exp(-|t|))
        losses[i] = max(-t, yhat.dtype.type(0)) + np.log1p(np.exp(-abs(t)))
        e = np.exp(-abs(t))
        sig_minus_t = one / (one + e) if t <= 0 else e / (one + e)  # sigmoid(-t)
        dl_dyhat[i] = -y[i] * sig_minus_t * scale


@njit(**_OPTS)
def hinge(yhat, y, margin, scale, losses, dl_dyhat):
    """yhat (N,), y (N,) in {-1, 1}: max(0, margin - y yhat).

    margin 1 is the SVM's hinge; margin 0 is the perceptron criterion."""
    zero = yhat.dtype.type(0)
    for i in range(yhat.shape[0]):
        v = margin - y[i] * yhat[i]
        if v > 0:
            losses[i] = v
            dl_dyhat[i] = -y[i] * scale
        else:
            losses[i] = zero
            dl_dyhat[i] = zero
