"""The dense layer's kernels: the matmul (numpy's BLAS, called from Python) and the
bias kernels around it.

BLAS is called from Python, not from inside @njit: np.dot in a kernel uses
SciPy's OpenBLAS, a second thread pool beside numpy's (docs/performance.md).
"""
import numpy as np
from numba import njit, prange

from .. import formulas
from . import arrays
from .workspace import scratch

_OPTS = dict(parallel=True, cache=True, fastmath=True)
_bias_relu = njit(inline="always")(formulas.bias_relu)
_relu_grad_bias = njit(inline="always")(formulas.relu_grad_bias_column)


def matmul(a, b, out, trans_a=False, trans_b=False, accumulate=False):
    """out (M, N) = op(a) @ op(b), or += with ``accumulate``; op transposes
    when asked.  2-D, one float dtype.  Returns out."""
    A = a.T if trans_a else a
    B = b.T if trans_b else b
    if A.shape[0] != out.shape[0] or B.shape[1] != out.shape[1] or A.shape[1] != B.shape[0]:
        raise ValueError(f"matmul: op(a) {A.shape[0]}x{A.shape[1]} @ op(b) "
                         f"{B.shape[0]}x{B.shape[1]} does not give out {out.shape[0]}x{out.shape[1]}")
    if not accumulate:
        return np.matmul(A, B, out=out)
    product = scratch("matmul", out.shape, out.dtype)
    np.matmul(A, B, out=product)
    arrays.accumulate(out.reshape(-1), product.reshape(-1))
    return out


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
def add_bias_relu(y, b):
    """y (N, D) = relu(y + b) on every row (a Linear and the ReLU after it)."""
    for i in prange(y.shape[0]):
        for j in range(y.shape[1]):
            _bias_relu(y, b, i, j)


@njit(**_OPTS)
def relu_backward_bias_grad(y, dl_dy, dl_ds, db):
    """dl_ds (N, D) = dl_dy where the ReLU's output y > 0, else 0; db (D,) += its
    column sums (parallel over columns: race-free)."""
    for j in prange(y.shape[1]):
        _relu_grad_bias(y, dl_dy, dl_ds, db, j)
