"""Loss kernels, one thread per sample: per-sample losses and the gradient with
respect to the prediction, the twins of nnumba.kernels.cpu.losses (same formulas;
``scale`` multiplies the gradient). No fastmath: exp/log of extreme logits must
stay exact. A class label outside [0, C) cannot be checked on the host without a
copy, so the kernel guards it: that sample's loss becomes NaN (the caller then
looks at the labels and raises a clear error) and its gradient row zero."""
import math

from numba import cuda

from ._grid import FLOATS, arr, i64, launch_1d


@cuda.jit(cache=True)
def _softmax_cross_entropy(z, labels, scale, losses, dl_dz):
    n, c = z.shape
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        label = labels[i]
        if label < 0 or label >= c:
            losses[i] = math.nan
            for j in range(c):
                dl_dz[i, j] = 0
            continue
        m = z[i, 0]
        for j in range(1, c):
            if z[i, j] > m:
                m = z[i, j]
        total = z.dtype.type(0)
        for j in range(c):
            e = math.exp(z[i, j] - m)
            dl_dz[i, j] = e
            total += e
        losses[i] = math.log(total) + m - z[i, label]
        inv = scale / total
        for j in range(c):
            dl_dz[i, j] *= inv
        dl_dz[i, label] -= scale


@cuda.jit(cache=True)
def _squared_error(yhat, y, scale, losses, dl_dyhat):
    two = yhat.dtype.type(2)
    for i in range(cuda.grid(1), yhat.shape[0], cuda.gridsize(1)):
        s = yhat.dtype.type(0)
        for j in range(yhat.shape[1]):
            d = yhat[i, j] - y[i, j]
            s += d * d
            dl_dyhat[i, j] = two * d * scale
        losses[i] = s


@cuda.jit(cache=True)
def _logistic(yhat, y, scale, losses, dl_dyhat):
    one = yhat.dtype.type(1)
    zero = yhat.dtype.type(0)
    for i in range(cuda.grid(1), yhat.shape[0], cuda.gridsize(1)):
        t = y[i] * yhat[i]
        e = math.exp(-abs(t))
        losses[i] = max(-t, zero) + math.log1p(e)
        sig_minus_t = one / (one + e) if t <= 0 else e / (one + e)
        dl_dyhat[i] = -y[i] * sig_minus_t * scale


@cuda.jit(cache=True)
def _hinge(yhat, y, margin, scale, losses, dl_dyhat):
    zero = yhat.dtype.type(0)
    for i in range(cuda.grid(1), yhat.shape[0], cuda.gridsize(1)):
        v = margin - y[i] * yhat[i]
        if v > 0:
            losses[i] = v
            dl_dyhat[i] = -y[i] * scale
        else:
            losses[i] = zero
            dl_dyhat[i] = zero


def softmax_cross_entropy(z, labels, scale, losses, dl_dz):
    """z (N, C) logits, labels (N,) int64: -log softmax(z)[label], stable."""
    launch_1d(_softmax_cross_entropy, z.shape[0])(z, labels, scale, losses, dl_dz)


def squared_error(yhat, y, scale, losses, dl_dyhat):
    """yhat, y (N, K): per-sample sum of squares; gradient 2 (yhat - y) * scale."""
    launch_1d(_squared_error, yhat.shape[0])(yhat, y, scale, losses, dl_dyhat)


def logistic(yhat, y, scale, losses, dl_dyhat):
    """yhat (N,), y (N,) in {-1, 1}: log(1 + e^{-y yhat})."""
    launch_1d(_logistic, yhat.shape[0])(yhat, y, scale, losses, dl_dyhat)


def hinge(yhat, y, margin, scale, losses, dl_dyhat):
    """yhat (N,), y (N,) in {-1, 1}: max(0, margin - y yhat)."""
    launch_1d(_hinge, yhat.shape[0])(yhat, y, margin, scale, losses, dl_dyhat)


PTX_SIGNATURES = {
    "_softmax_cross_entropy": [(arr(t, 2), arr(i64, 1), t, arr(t, 1), arr(t, 2)) for t in FLOATS],
    "_squared_error": [(arr(t, 2), arr(t, 2), t, arr(t, 1), arr(t, 2)) for t in FLOATS],
    "_logistic": [(arr(t, 1), arr(t, 1), t, arr(t, 1), arr(t, 1)) for t in FLOATS],
    "_hinge": [(arr(t, 1), arr(t, 1), t, t, arr(t, 1), arr(t, 1)) for t in FLOATS],
}
