"""The checks before a kernel that works row by row, on the CPU and the device
alike: gather_rows and the loss kernels index their outputs by the first array's
rows, so a shorter output was written past its end (a segfault on the CPU, an
IndexError in the CUDA simulator, silent writes on a GPU), and a gradient written
into the predictions it still reads gave wrong losses (fuzz round 46).  Index and
label values are checked where they are read (a host copy of a device array
each step would cost more than the kernel)."""
import numpy as np

from ..errors import DTypeError, ShapeError
from .flat import overlap

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_gather(src, idx, dst) -> None:
    """src (M, F), idx (R,) int64 and dst (R, F) of src's dtype."""
    if src.ndim != 2 or idx.ndim != 1 or tuple(dst.shape) != (idx.size, src.shape[1]) or \
            dst.dtype != src.dtype or idx.dtype != np.int64:
        raise ShapeError(f"gather_rows: takes src (M, F), idx (R,) int64 and dst (R, F) of "
                         f"src's dtype, got {src.dtype} {tuple(src.shape)}, {idx.dtype} "
                         f"{tuple(idx.shape)}, {dst.dtype} {tuple(dst.shape)}")


def check_loss(kernel: str, yhat, y, *rest) -> None:
    """A loss kernel's arguments (yhat, y, [margin,] scale, losses, dl_dyhat): the
    predictions (N, ...) and their gradient of one shape and float dtype, losses
    (N,) of it, targets (N,): integer class labels for the cross-entropy, else
    values of yhat's dtype and shape; the outputs apart from the predictions."""
    losses, grad = rest[-2:]
    n = yhat.shape[0] if yhat.ndim else -1
    labels = kernel == "softmax_cross_entropy"
    targets, target_text = ((n,), "int64 labels (N,)") if labels else \
        (tuple(yhat.shape), "targets of their shape and dtype")
    if yhat.ndim not in (1, 2) or tuple(y.shape) != targets or \
            tuple(losses.shape) != (n,) or tuple(grad.shape) != tuple(yhat.shape):
        raise ShapeError(f"{kernel}: takes predictions (N,) or (N, K), {target_text}, losses "
                         f"(N,) and a gradient of the predictions' shape, got "
                         f"{tuple(yhat.shape)}, {tuple(y.shape)}, {tuple(losses.shape)} and "
                         f"{tuple(grad.shape)}")
    dtype = np.dtype(yhat.dtype)
    if dtype not in FLOATS or losses.dtype != dtype or grad.dtype != dtype or \
            np.dtype(y.dtype) != (np.dtype(np.int64) if labels else dtype):
        names = ", ".join(np.dtype(a.dtype).name for a in (yhat, y, losses, grad))
        raise DTypeError(f"{kernel}: takes float32 or float64 predictions, losses and "
                         f"gradient of one dtype and {target_text}, got {names}")
    if overlap(grad, yhat) or overlap(losses, yhat) or overlap(losses, grad):
        raise ShapeError(f"{kernel}: its outputs must not overlap its predictions or each "
                         f"other; write into arrays of their own")
