"""The checks before a kernel that works row by row, on the CPU and the device
alike: gather_rows and the loss kernels index their outputs by the first array's
rows, so a shorter output was written past its end (a segfault on the CPU, an
IndexError in the CUDA simulator, silent writes on a GPU), and a gradient written
into the predictions it still reads gave wrong losses (fuzz round 46).  Index and
label values are checked where they are read (a host copy of a device array
each step would cost more than the kernel)."""
import numpy as np

from ..errors import DTypeError, ShapeError
from .flat import FLOATS, check_given, overlap, writable


def check_gather(src, idx, dst) -> None:
    """src (M, F) and dst (R, F) of one numeric dtype, dst writable, idx (R,) int64 (a
    device's kernel marks a row of an index out of range with NaN, -1 or the dtype's
    largest value)."""
    check_given("gather_rows", src, idx, dst)

    def got():  # (only on failure: formatting dtypes costs ~10 us, twice a training step)
        return (f"got {src.dtype} {tuple(src.shape)}, {idx.dtype} {tuple(idx.shape)}, "
                f"{dst.dtype} {tuple(dst.shape)}")
    if src.ndim != 2 or idx.ndim != 1 or dst.shape != (idx.size, src.shape[1]):
        raise ShapeError(f"gather_rows: takes src (M, F), idx (R,) and dst (R, F), {got()}")
    if dst.dtype != src.dtype or idx.dtype != np.int64 or dst.dtype.kind not in "iuf":
        raise DTypeError(f"gather_rows: takes src and dst of one numeric dtype and idx int64, "
                         f"{got()}")
    if not writable(dst):
        raise ShapeError("gather_rows: dst is read-only; write into an array of its own")


#: each loss kernel's predictions: (N, C) logits, (N, K) values, (N,) signed scores
_PREDICTIONS = {"softmax_cross_entropy": 2, "squared_error": 2, "logistic": 1, "hinge": 1}


def check_loss(kernel: str, yhat, y, *rest) -> None:
    """A loss kernel's arguments (yhat, y, [margin,] scale, losses, dl_dyhat): the
    predictions ((N, C) for the cross-entropy and squared error, (N,) for logistic and
    hinge) and their gradient of one shape and float dtype, losses (N,) of it, writable
    and apart from the predictions; targets of the predictions' shape, or for the
    cross-entropy integer class labels (N,)."""
    losses, grad = rest[-2:]
    check_given(kernel, yhat, y, losses, grad)
    labels = kernel == "softmax_cross_entropy"
    rank = _PREDICTIONS[kernel]
    n = yhat.shape[0] if yhat.ndim else -1
    if yhat.ndim != rank or y.shape != ((n,) if labels else yhat.shape) or \
            losses.shape != (n,) or grad.shape != yhat.shape:
        raise ShapeError(f"{kernel}: takes predictions {'(N, K)' if rank == 2 else '(N,)'}, "
                         f"{'class labels (N,)' if labels else 'targets of their shape'}, "
                         f"losses (N,) and a gradient of the predictions' shape, got "
                         f"{tuple(yhat.shape)}, {tuple(y.shape)}, {tuple(losses.shape)} and "
                         f"{tuple(grad.shape)}")
    dtype = yhat.dtype
    if dtype not in FLOATS or losses.dtype != dtype or grad.dtype != dtype or not (
            y.dtype.kind in "iu" or (not labels and y.dtype in FLOATS)):
        raise DTypeError(f"{kernel}: takes float32 or float64 predictions, losses and "
                         f"gradient of one dtype, and {'integer' if labels else 'numeric'} "
                         f"targets; got predictions {dtype}, targets {y.dtype}, losses "
                         f"{losses.dtype}, gradient {grad.dtype}")
    if not (writable(losses) and writable(grad)):
        raise ShapeError(f"{kernel}: its outputs (losses, gradient) must be writable")
    if overlap(grad, yhat) or overlap(losses, yhat) or overlap(losses, grad):
        raise ShapeError(f"{kernel}: its outputs must not overlap its predictions or each "
                         f"other; write into arrays of their own")
