"""Rosenblatt's perceptron epoch: inherently sequential, so a serial kernel."""
from numba import njit
from ..cache_stamp import stamp


@njit(cache=True, fastmath=True)
def perceptron_epoch(x, y, w):
    """One pass in order over x (N, D) and y (N,) in {-1, +1}, updating w (D,) in place:
    w += y_n x_n whenever y_n (w . x_n) <= 0. Returns the number of updates."""
    n, d = x.shape
    changes = 0
    for i in range(n):
        s = w.dtype.type(0)
        for j in range(d):
            s += x[i, j] * w[j]
        if s * y[i] <= 0:
            for j in range(d):
                w[j] += y[i] * x[i, j]
            changes += 1
    return changes


@njit(cache=True, fastmath=True)
def sign_errors(x, y, w):
    """Number of samples with sigma(w . x_n) != y_n, sigma(s) = 1 if s >= 0 else -1."""
    errors = 0
    for i in range(x.shape[0]):
        s = w.dtype.type(0)
        for j in range(x.shape[1]):
            s += x[i, j] * w[j]
        if (1 if s >= 0 else -1) != y[i]:
            errors += 1
    return errors


stamp(globals())  # the disk cache follows every kernel source
