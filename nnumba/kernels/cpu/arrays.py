"""Array utilities a training step needs besides the layers' kernels: fill,
scale, elementwise product and sum, row gather, and the finiteness check."""
import numpy as np
from numba import njit, prange
from ..cache_stamp import stamp

_OPTS = dict(parallel=True, cache=True, fastmath=True)


def fill(a, value):
    """a (any contiguous array) = value, in a's dtype.  Returns a."""
    a.fill(value)
    return a


@njit(**_OPTS)
def _scale(src, factor, dst):
    for i in prange(src.size):
        dst[i] = src[i] * factor


def scale(src, factor, dst):
    """dst = src * factor (flat, one size; factor taken in their dtype)."""
    _scale(src, src.dtype.type(factor), dst)


@njit(**_OPTS)
def multiply(a, b, out):
    """out = a * b elementwise (flat, one size)."""
    for i in prange(a.size):
        out[i] = a[i] * b[i]


@njit(**_OPTS)
def accumulate(dst, src):
    """dst += src (flat, one size): gradient accumulation."""
    for i in prange(dst.size):
        dst[i] += src[i]


@njit(cache=True, fastmath=True)
def _gather_rows(src, idx, dst):
    # Serial: a mini-batch is a few hundred kB, which one core copies faster than
    # a parallel launch pays off (and faster than np.take with out=).
    F = src.shape[1]
    for r in range(idx.size):
        s = src[idx[r]]
        d = dst[r]
        for j in range(F):
            d[j] = s[j]


def gather_rows(src, idx, dst):
    """dst (R, F) = src[idx] for src (M, F), idx (R,) int64 in [0, M)."""
    _gather_rows(src, idx, dst)
    return dst


def all_finite(x) -> bool:
    """Whether x holds no NaN and no infinity."""
    return bool(np.isfinite(x).all())


stamp(globals())  # the disk cache follows every kernel source
