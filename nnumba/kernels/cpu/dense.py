"""Kernels around the dense (fully connected) matmul, which numpy's BLAS does.

BLAS is called from Python, not from inside @njit: np.dot in a kernel uses
scipy's OpenBLAS, a second thread pool that fought ours (PERFORMANCE.md).
"""
from numba import njit, prange

_OPTS = dict(parallel=True, cache=True, fastmath=True)


@njit(**_OPTS)
def add_bias(y, b):
    """y (N, D) += b (D,) on every row."""
    for i in prange(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] += b[j]


@njit(**_OPTS)
def accumulate_bias_grad(dl_dy, db):
    """db (D,) += column sums of dl_dy (N, D)."""
    for j in prange(dl_dy.shape[1]):
        s = db.dtype.type(0)
        for i in range(dl_dy.shape[0]):
            s += dl_dy[i, j]
        db[j] += s


@njit(**_OPTS)
def accumulate(dst, src):
    """dst += src, both flat and of one size (gradient accumulation)."""
    for i in prange(dst.size):
        dst[i] += src[i]
