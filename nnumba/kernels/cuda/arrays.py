"""Device-array utilities a training step needs besides the layers' kernels: fill,
scale, elementwise product and sum, row gather (shuffled mini-batches on the
device) and the finiteness check (the input check)."""
import math

import numpy as np
from numba import cuda

from ._grid import device_empty, launch_1d, over, to_host
from ..cache_stamp import stamp
from ..flat import c_contiguous, check_fill, check_flat_floats, check_given
from ..row_checks import check_gather


@cuda.jit(cache=True)
def _fill(a, value):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] = value


def fill(a, value):
    """a (any contiguous array) = value, in a's dtype.  Returns a."""
    check_fill(a)  # (a strided one's reshape would fill a copy, or fail on a GPU)
    flat = a.reshape(a.size, order="C" if c_contiguous(a) else "F")
    launch_1d(_fill, flat.size)(flat, flat.dtype.type(value))
    return a


@cuda.jit(cache=True)
def _scale(src, factor, dst):
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        dst[i] = src[i] * factor


def scale(src, factor, dst):
    """dst = src * factor (flat, one size; factor in their dtype)."""
    check_flat_floats("scale", src, dst)
    launch_1d(_scale, src.size)(src, src.dtype.type(factor), dst)


@cuda.jit(cache=True)
def _multiply(a, b, out):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        out[i] = a[i] * b[i]


_multiply_all = over(_multiply)


def multiply(a, b, out):
    """out = a * b (flat, one size)."""
    check_flat_floats("multiply", a, b, out)
    _multiply_all(a, b, out)


@cuda.jit(cache=True)
def _accumulate(dst, src):
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        dst[i] += src[i]


_accumulate_all = over(_accumulate)


def accumulate(dst, src):
    """dst += src (flat, one size)."""
    check_flat_floats("accumulate", src, dst)  # (dst: the output)
    _accumulate_all(dst, src)


@cuda.jit(cache=True)
def _gather_rows(src, idx, dst, missing):
    # dst[r, :] = src[idx[r], :]; consecutive threads copy consecutive columns.
    rows, cols = dst.shape
    for t in range(cuda.grid(1), rows * cols, cuda.gridsize(1)):
        r = t // cols
        i = idx[r]
        dst[r, t - r * cols] = src[i, t - r * cols] if 0 <= i < src.shape[0] else missing


def gather_rows(src, idx, dst):
    """dst (R, F) = src[idx] for src (M, F), idx (R,) int64 in [0, M).  The shapes are
    checked first (the CPU set's check); an index outside [0, M) fills its row with
    NaN, or -1 (the largest value, unsigned) for integer labels, which the input and
    label checks after it report (the CPU set raises: checking the indices here
    would copy them to the host)."""
    check_gather(src, idx, dst)
    kind = np.dtype(dst.dtype).kind
    missing = np.nan if kind == "f" else -1 if kind == "i" else np.iinfo(dst.dtype).max
    launch_1d(_gather_rows, dst.size)(src, idx, dst, dst.dtype.type(missing))
    return dst


@cuda.jit(cache=True)  # no fastmath: it would let the compiler assume no NaN
def _count_nonfinite(x, count):
    n = 0
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if math.isnan(x[i]) or math.isinf(x[i]):
            n += 1
    if n:
        cuda.atomic.add(count, 0, n)


_scratch = {}  # the int32 counter, allocated on first use


def all_finite(x) -> bool:
    """Whether x holds no NaN and no infinity (one 4-byte copy to the host)."""
    check_given("all_finite", x)
    count = fill(device_empty(1, np.int32, keep=_scratch), 0)
    launch_1d(_count_nonfinite, x.size)(x.reshape(x.size), count)
    return int(to_host(count)[0]) == 0


stamp(globals())  # the disk cache follows every kernel source
