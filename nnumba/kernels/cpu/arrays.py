"""Array utilities a training step needs besides the layers' kernels: fill,
scale, elementwise product and sum, row gather, and the finiteness check."""
import numpy as np
from numba import njit, prange
from ..cache_stamp import stamp
from ..flat import check_fill, check_flat_floats, check_given
from ..row_checks import check_gather
from ...errors import ShapeError

_OPTS = dict(parallel=True, cache=True, fastmath=True)
# From this many elements on, fill and gather_rows split the work between the cores.
# The flat gradients a model zeroes before every step lie in both cores' caches after
# the parallel update, and a mini-batch's rows lie anywhere in memory, where each
# core hides its own misses (MLP epoch: docs/performance.md, Memory).
_PARALLEL_FROM = 1 << 16


def fill(a, value):
    """a (any contiguous array) = value, in a's dtype.  Returns a."""
    check_fill(a)
    if a.size >= _PARALLEL_FROM and a.flags.c_contiguous:
        _fill(a.reshape(-1), a.dtype.type(value))
    else:
        a.fill(value)  # no kernel to compile for the many small arrays and dtypes
    return a


@njit(**_OPTS)
def _fill(flat, value):
    for i in prange(flat.size):
        flat[i] = value


@njit(**_OPTS)
def _scale(src, factor, dst):
    for i in prange(src.size):
        dst[i] = src[i] * factor


def scale(src, factor, dst):
    """dst = src * factor (flat, one size; factor taken in their dtype)."""
    check_flat_floats("scale", src, dst)
    _scale(src, src.dtype.type(factor), dst)


@njit(**_OPTS)
def _multiply(a, b, out):
    for i in prange(a.size):
        out[i] = a[i] * b[i]


def multiply(a, b, out):
    """out = a * b elementwise (flat, one size)."""
    check_flat_floats("multiply", a, b, out)
    _multiply(a, b, out)


@njit(**_OPTS)
def _accumulate(dst, src):
    for i in prange(dst.size):
        dst[i] += src[i]


def accumulate(dst, src):
    """dst += src (flat, one size): gradient accumulation."""
    check_flat_floats("accumulate", src, dst)  # (dst: the output)
    _accumulate(dst, src)


@njit(**_OPTS)
def _gather_rows(src, idx, dst):
    for r in range(idx.size):  # (a serial pass: numba checks no bounds)
        if idx[r] < 0 or idx[r] >= src.shape[0]:
            raise ShapeError("gather_rows: an index lies outside [0, len(src))")
    for r in prange(idx.size):  # faster than np.take with out=
        s = src[idx[r]]
        d = dst[r]
        for j in range(s.size):
            d[j] = s[j]


def gather_rows(src, idx, dst):
    """dst (R, F) = src[idx] for src (M, F), idx (R,) int64 in [0, M)."""
    check_gather(src, idx, dst)
    if dst.size >= _PARALLEL_FROM:
        _gather_rows(src, idx, dst)
        return dst
    if idx.size and (idx.min() < 0 or idx.max() >= len(src)):  # (np.take: -1 is the last)
        raise ShapeError("gather_rows: an index lies outside [0, len(src))")
    np.take(src, idx, axis=0, out=dst)  # the labels: no kernel, no thread launch
    return dst


# NaN and infinity are the floats whose exponent bits are all set: with the sign bit
# masked off, exactly the bit patterns from infinity's up.
_BITS = {np.dtype(np.float32): (np.uint32, np.uint32(0x7FFFFFFF), np.uint32(0x7F800000)),
         np.dtype(np.float64): (np.uint64, np.uint64(0x7FFFFFFFFFFFFFFF),
                                np.uint64(0x7FF0000000000000))}


@njit(cache=True)
def _below(bits, mask, top):
    """Whether every masked bit pattern is below ``top``: an integer max, which
    vectorises (a float test would not without fastmath, which assumes no NaN)."""
    most = bits.dtype.type(0)
    for i in range(bits.size):
        most = max(most, bits[i] & mask)
    return most < top


def all_finite(x) -> bool:
    """Whether x holds no NaN and no infinity (an input batch is checked every step:
    this reads it once, where numpy's isfinite writes a boolean array first)."""
    check_given("all_finite", x)
    bits = _BITS.get(x.dtype)
    if bits is None or not x.flags.c_contiguous:
        return bool(np.isfinite(x).all())
    kind, mask, top = bits
    return bool(_below(x.reshape(-1).view(kind), mask, top))


stamp(globals())  # the disk cache follows every kernel source
