"""Loss kernels on the device, one thread per sample: the formulas of
:mod:`nnumba.kernels.formulas` (the CPU's too).  No fastmath: exp/log of extreme
logits must stay exact.  A class label outside [0, C) cannot be checked on the host
without a copy, so the kernel guards it: that sample's loss becomes NaN (the loss
then looks at the labels and raises a clear error) and its gradient row zero."""
import math

from numba import cuda

from .. import formulas as f
from ._grid import over, rows
from ..flat import checked
from ..row_checks import check_loss
from ..cache_stamp import stamp

_device = cuda.jit(device=True, inline=True)
_ce, _se = _device(f.softmax_cross_entropy), _device(f.squared_error)
_logistic_at, _hinge_at = _device(f.logistic), _device(f.hinge)


@cuda.jit(cache=True)
def _softmax_cross_entropy(z, labels, scale, losses, dl_dz):
    n, c = z.shape
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        if labels[i] < 0 or labels[i] >= c:
            losses[i] = math.nan
            for j in range(c):
                dl_dz[i, j] = 0
        else:
            _ce(z, labels, scale, losses, dl_dz, i)


@cuda.jit(cache=True)
def _squared_error(yhat, y, scale, losses, dl_dyhat):
    for i in range(cuda.grid(1), yhat.shape[0], cuda.gridsize(1)):
        _se(yhat, y, scale, losses, dl_dyhat, i)


# Device targets are checked here, not on the host before: a label that is not -1
# or +1 gets a NaN loss (and no gradient), which the loss then reports.

@cuda.jit(cache=True)
def _logistic(yhat, y, scale, losses, dl_dyhat):
    for i in range(cuda.grid(1), yhat.shape[0], cuda.gridsize(1)):
        if y[i] != 1 and y[i] != -1:
            losses[i] = math.nan
            dl_dyhat[i] = 0
        else:
            _logistic_at(yhat, y, scale, losses, dl_dyhat, i)


@cuda.jit(cache=True)
def _hinge(yhat, y, margin, scale, losses, dl_dyhat):
    for i in range(cuda.grid(1), yhat.shape[0], cuda.gridsize(1)):
        if y[i] != 1 and y[i] != -1:
            losses[i] = math.nan
            dl_dyhat[i] = 0
        else:
            _hinge_at(yhat, y, margin, scale, losses, dl_dyhat, i)


# (the arrays' shapes, dtypes and overlap checked first, as the CPU set's)
softmax_cross_entropy = checked(over(_softmax_cross_entropy, rows), "softmax_cross_entropy",
                                check_loss)
squared_error = checked(over(_squared_error, rows), "squared_error", check_loss)
logistic = checked(over(_logistic, rows), "logistic", check_loss)
hinge = checked(over(_hinge, rows), "hinge", check_loss)


stamp(globals())  # the disk cache follows every kernel source
