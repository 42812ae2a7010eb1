"""The dense layer's kernels: the matmul (BLAS, :mod:`.blas`) and the bias kernels
around it."""
import numpy as np
from numba import njit

from .. import formulas
from .blas import gemm
from ..flat import check_apart, checked
from ...errors import ShapeError
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
    if a.ndim != 2 or b.ndim != 2 or out.ndim != 2:
        raise ShapeError(f"matmul: takes 2-D arrays, got {a.shape}, {b.shape} and {out.shape}")
    A = a.T if trans_a else a
    B = b.T if trans_b else b
    if A.shape[0] != out.shape[0] or B.shape[1] != out.shape[1] or A.shape[1] != B.shape[0]:
        raise ShapeError(f"matmul: op(a) {A.shape[0]}x{A.shape[1]} @ op(b) "
                         f"{B.shape[0]}x{B.shape[1]} does not give out {out.shape[0]}x{out.shape[1]}")
    check_apart("matmul", out, a, b)
    return gemm(A, B, out, accumulate)


@njit(inline="always")
def _check_bias(y, b):
    # numba checks no bounds: a bias of another width read and wrote past the arrays
    # (the layers check their own shapes; the wrappers below, the number of axes)
    if b.size != y.shape[1]:
        raise ShapeError("add_bias, add_bias_relu, accumulate_bias_grad, relu_backward_bias_grad: "
                         "take an (N, D) array and a (D,) bias or gradient")


@njit(**_SEQ)
def _add_bias(y, b):
    """y (N, D) += b (D,) on every row."""
    _check_bias(y, b)
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] += b[j]


@njit(**_SEQ)
def _accumulate_bias_grad(dl_dy, db):
    """db (D,) += column sums of dl_dy (N, D), summed in float64: one float32 sum of
    many rows (a large batch, or a plugin's scalar parameter: D = 1) drifts by 1e-4."""
    _check_bias(dl_dy, db)
    acc = np.zeros(db.size, np.float64)
    for i in range(dl_dy.shape[0]):
        for j in range(dl_dy.shape[1]):
            acc[j] += dl_dy[i, j]
    for j in range(db.size):
        db[j] += acc[j]


@njit(**_SEQ)
def _add_bias_relu(y, b):
    """y (N, D) = relu(y + b) on every row (a Linear and the ReLU after it)."""
    _check_bias(y, b)
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            _bias_relu(y, b, i, j)


@njit(**_SEQ)
def _relu_backward_bias_grad(y, dl_dy, dl_ds, db):
    """dl_ds (N, D) = dl_dy where the ReLU's output y > 0, else 0; db (D,) += its
    column sums (in float64, as accumulate_bias_grad)."""
    _check_bias(y, db)
    n, d = y.shape
    if dl_dy.shape != y.shape or dl_ds.shape != y.shape:
        raise ShapeError("relu_backward_bias_grad: y, dl_dy and dl_ds differ in shape")
    acc = np.zeros(d, np.float64)
    for i in range(n):  # row views: the flat index i * d + j kept the loop from vectorising
        yr, gr, sr = y[i], dl_dy[i], dl_ds[i]
        for j in range(d):
            _relu_grad(yr, gr, sr, j)
            acc[j] += sr[j]
    for j in range(d):
        db[j] += acc[j]


def _two_axes(name, y, b):
    # an (N, C, L) array or a 2-D bias was numba's TypingError, which named no argument
    if y.ndim != 2 or b.ndim != 1:
        raise ShapeError(f"{name}: takes an (N, D) array and a (D,) bias or gradient, got "
                         f"{y.shape} and {b.shape}")


add_bias = checked(_add_bias, "add_bias", _two_axes)
add_bias_relu = checked(_add_bias_relu, "add_bias_relu", _two_axes)
accumulate_bias_grad = checked(_accumulate_bias_grad, "accumulate_bias_grad", _two_axes)


def relu_backward_bias_grad(y, dl_dy, dl_ds, db):
    """dl_ds (N, D) = dl_dy where the ReLU's output y > 0, else 0; db (D,) += its
    column sums (in float64, as accumulate_bias_grad)."""
    if y.ndim != 2 or dl_dy.ndim != 2 or dl_ds.ndim != 2 or db.ndim != 1:
        raise ShapeError(f"relu_backward_bias_grad: takes (N, D) arrays and a (D,) gradient, "
                         f"got {y.shape}, {dl_dy.shape}, {dl_ds.shape} and {db.shape}")
    _relu_backward_bias_grad(y, dl_dy, dl_ds, db)


stamp(globals())  # the disk cache follows every kernel source
