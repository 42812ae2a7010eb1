"""Loss kernels: each writes per-sample losses and the gradient with respect to the
prediction, ``scale`` multiplying the gradient (1/N for a mean, 1 for a sum); the formulas are
:mod:`nnumba.kernels.formulas`'.  A mini-batch's loss is a few thousand numbers: a
parallel launch would cost more than the work, so these loops are serial.  The
loss checked the labels (targets in {-1, 1}); each kernel checks its arrays' sizes,
and the cross-entropy its class labels' range, before it reads past an array."""
from numba import njit

from .. import formulas as f
from ..cache_stamp import stamp
from ...errors import LabelError, ShapeError

_OPTS = dict(cache=True, fastmath=False)  # exp/log of extreme logits must stay exact
_ce, _se = njit(inline="always")(f.softmax_cross_entropy), njit(inline="always")(f.squared_error)
_logistic, _hinge = njit(inline="always")(f.logistic), njit(inline="always")(f.hinge)


@njit(inline="always")
def _check_rows(yhat, y, losses, dl_dyhat):
    # numba checks no bounds: a shorter output was written past its end, and a gradient
    # written into the predictions it still reads gave wrong losses (fuzz round 46)
    n = yhat.shape[0]
    if y.shape[0] != n or losses.shape != (n,) or dl_dyhat.shape != yhat.shape:
        raise ShapeError("a loss kernel: targets, losses (N,) and gradient (the predictions' "
                         "shape) must fit the predictions (N, ...)")
    if dl_dyhat.ctypes.data == yhat.ctypes.data or losses.ctypes.data == yhat.ctypes.data:
        raise ShapeError("a loss kernel: its outputs must not be its predictions")


@njit(**_OPTS)
def softmax_cross_entropy(z, labels, scale, losses, dl_dz):
    """z (N, C) logits, labels (N,) int64 in [0, C)."""
    _check_rows(z, labels, losses, dl_dz)
    for i in range(z.shape[0]):
        if labels[i] < 0 or labels[i] >= z.shape[1]:
            raise LabelError("softmax_cross_entropy: a label lies outside [0, C)")
        _ce(z, labels, scale, losses, dl_dz, i)


@njit(**_OPTS)
def squared_error(yhat, y, scale, losses, dl_dyhat):
    """yhat, y (N, K)."""
    _check_rows(yhat, y, losses, dl_dyhat)
    if y.shape != yhat.shape:
        raise ShapeError("squared_error: targets and predictions differ in shape")
    for i in range(yhat.shape[0]):
        _se(yhat, y, scale, losses, dl_dyhat, i)


@njit(**_OPTS)
def logistic(yhat, y, scale, losses, dl_dyhat):
    """yhat (N,), y (N,) in {-1, 1}."""
    _check_rows(yhat, y, losses, dl_dyhat)
    for i in range(yhat.shape[0]):
        _logistic(yhat, y, scale, losses, dl_dyhat, i)


@njit(**_OPTS)
def hinge(yhat, y, margin, scale, losses, dl_dyhat):
    """yhat (N,), y (N,) in {-1, 1}; margin 1: the SVM's hinge, 0: the perceptron's."""
    _check_rows(yhat, y, losses, dl_dyhat)
    for i in range(yhat.shape[0]):
        _hinge(yhat, y, margin, scale, losses, dl_dyhat, i)


stamp(globals())  # the disk cache follows every kernel source
