"""Small device-array utilities a training step needs besides the layer kernels:
fill, scale, elementwise product (dropout), row gather (shuffled mini-batches on
the device) and a count of non-finite values (the input check)."""
import math

from numba import cuda

from ._grid import FLOATS, arr, i32, i64, launch_1d


@cuda.jit(cache=True)
def _fill(a, value):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] = value


def fill(a, value):
    """a (flat view of any contiguous array) = value, in a's dtype."""
    flat = a.reshape(a.size)
    if flat.size:
        launch_1d(_fill, flat.size)(flat, flat.dtype.type(value))
    return a


@cuda.jit(cache=True)
def _scale(src, factor, dst):
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        dst[i] = src[i] * factor


def scale(src, factor, dst):
    """dst = src * factor (both flat, one size; factor in their dtype)."""
    if src.size:
        launch_1d(_scale, src.size)(src, src.dtype.type(factor), dst)
    return dst


@cuda.jit(cache=True)
def _multiply(a, b, out):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        out[i] = a[i] * b[i]


def multiply(a, b, out):
    """out = a * b elementwise (flat, one size)."""
    if a.size:
        launch_1d(_multiply, a.size)(a, b, out)
    return out


@cuda.jit(cache=True)
def _gather_rows(src, idx, dst):
    # dst[r, :] = src[idx[r], :]; consecutive threads copy consecutive columns.
    rows, cols = dst.shape
    for t in range(cuda.grid(1), rows * cols, cuda.gridsize(1)):
        r = t // cols
        dst[r, t - r * cols] = src[idx[r], t - r * cols]


def gather_rows(src, idx, dst):
    """dst (R, F) = src[idx] for src (M, F) and idx (R,) int64 in [0, M) (the
    caller guarantees the range: these are permutation indices)."""
    if dst.size:
        launch_1d(_gather_rows, dst.size)(src, idx, dst)
    return dst


@cuda.jit(cache=True)  # no fastmath: it would let the compiler assume no NaN
def _count_nonfinite(x, count):
    n = 0
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if math.isnan(x[i]) or math.isinf(x[i]):
            n += 1
    if n:
        cuda.atomic.add(count, 0, n)


def count_nonfinite(x, count):
    """Number of NaN or infinite values in x (flat); count is a 1-element int32
    device scratch array. Returns a Python int (one small copy to the host)."""
    fill(count, 0)
    if x.size:
        launch_1d(_count_nonfinite, x.size)(x, count)
    return int(count.copy_to_host()[0])


PTX_SIGNATURES = {
    "_fill": [(arr(t, 1), t) for t in FLOATS + (i32,)],
    "_scale": [(arr(t, 1), t, arr(t, 1)) for t in FLOATS],
    "_multiply": [(arr(t, 1), arr(t, 1), arr(t, 1)) for t in FLOATS],
    "_gather_rows": [(arr(t, 2), arr(i64, 1), arr(t, 2)) for t in FLOATS + (i64,)],
    "_count_nonfinite": [(arr(t, 1), arr(i32, 1)) for t in FLOATS],
}
