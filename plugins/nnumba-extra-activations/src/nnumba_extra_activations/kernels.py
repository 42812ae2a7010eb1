"""Flat elementwise kernels; the layers pass contiguous 1-D views."""
import numpy as np
from numba import njit, prange

_OPTS = dict(parallel=True, cache=True, fastmath=True)
# Softplus without fastmath: with it LLVM computes the vectorised body's division and
# exponential by approximations the loop's scalar remainder does not use, so an
# element's value depended on its position in the array (1 ulp in float32).
_EXACT = dict(parallel=True, cache=True)


@njit(**_OPTS)
def leaky_relu_forward(x, slope, y):
    for i in prange(x.size):
        y[i] = x[i] if x[i] > 0 else slope * x[i]


@njit(**_OPTS)
def leaky_relu_backward(x, slope, dl_dy, dl_dx):
    for i in prange(x.size):
        dl_dx[i] = dl_dy[i] if x[i] > 0 else slope * dl_dy[i]


@njit(**_EXACT)
def softplus_forward(x, y):
    # log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}): no overflow for large |x|.
    for i in prange(x.size):
        y[i] = max(x[i], x.dtype.type(0)) + np.log1p(np.exp(-abs(x[i])))


@njit(**_EXACT)
def softplus_backward(x, dl_dy, dl_dx):
    one = x.dtype.type(1)
    for i in prange(x.size):
        e = np.exp(-abs(x[i]))  # the derivative is sigmoid(x)
        dl_dx[i] = dl_dy[i] * (one / (one + e) if x[i] >= 0 else e / (one + e))
