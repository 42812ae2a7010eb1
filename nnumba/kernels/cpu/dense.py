"""The dense layer's kernels: the matmul (BLAS, :mod:`.blas`) and the bias kernels
around it."""
import numpy as np
from numba import njit

from .. import formulas
from .blas import gemm
from ..flat import check_bias, check_matmul, checked
from ..cache_stamp import stamp

# The bias kernels are serial: a dense layer's output is a few hundred kB, which one
# core streams faster than a parallel launch pays off; the sums go row by row, along
# the contiguous axis, into one accumulator per column.
_SEQ = dict(cache=True, fastmath=formulas.NAN_EXACT)
_bias_relu = njit(inline="always")(formulas.bias_relu)
_relu_grad = njit(inline="always")(formulas.relu_grad)


def matmul(a, b, out, trans_a=False, trans_b=False, accumulate=False):
    """out (M, N) = op(a) @ op(b), or += with ``accumulate``; op transposes
    when asked.  2-D, one float dtype.  Returns out."""
    check_matmul(a, b, out, trans_a, trans_b)
    A = a.T if trans_a else a
    B = b.T if trans_b else b
    return gemm(A, B, out, accumulate)


@njit(**_SEQ)
def _add_bias(y, b):
    """y (N, D) += b (D,) on every row."""
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] += b[j]


@njit(**_SEQ)
def _accumulate_bias_grad(dl_dy, db):
    """db (D,) += column sums of dl_dy (N, D), summed in float64: one float32 sum of
    many rows (a large batch, or a plugin's scalar parameter: D = 1) drifts by 1e-4."""
    acc = np.zeros(db.size, np.float64)
    for i in range(dl_dy.shape[0]):
        for j in range(dl_dy.shape[1]):
            acc[j] += dl_dy[i, j]
    for j in range(db.size):
        db[j] += acc[j]


@njit(**_SEQ)
def _add_bias_relu(y, b):
    """y (N, D) = relu(y + b) on every row (a Linear and the ReLU after it)."""
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            _bias_relu(y, b, i, j)


@njit(**_SEQ)
def _relu_backward_bias_grad(y, dl_dy, dl_ds, db):
    """dl_ds (N, D) = dl_dy where the ReLU's output y > 0, else 0; db (D,) += its
    column sums (in float64, as accumulate_bias_grad)."""
    n, d = y.shape
    acc = np.zeros(d, np.float64)
    for i in range(n):  # row views: the flat index i * d + j kept the loop from vectorising
        yr, gr, sr = y[i], dl_dy[i], dl_ds[i]
        for j in range(d):
            _relu_grad(yr, gr, sr, j)
            acc[j] += sr[j]
    for j in range(d):
        db[j] += acc[j]


# numba checks no bounds: a bias of another width read and wrote past the arrays, and
# an (N, C, L) array was numba's TypingError, which named no argument
add_bias = checked(_add_bias, "add_bias", check_bias)
add_bias_relu = checked(_add_bias_relu, "add_bias_relu", check_bias)
accumulate_bias_grad = checked(_accumulate_bias_grad, "accumulate_bias_grad", check_bias)


def relu_backward_bias_grad(y, dl_dy, dl_ds, db):
    """dl_ds (N, D) = dl_dy where the ReLU's output y > 0, else 0; db (D,) += its
    column sums (in float64, as accumulate_bias_grad)."""
    check_bias("relu_backward_bias_grad", y, db, dl_dy, dl_ds)
    _relu_backward_bias_grad(y, dl_dy, dl_ds, db)


stamp(globals())  # the disk cache follows every kernel source
