"""Loss kernels: each writes per-sample losses and the gradient with respect to the
prediction, ``scale`` multiplying the gradient (1/N for a mean, 1 for a sum); the formulas are
:mod:`nnumba.kernels.formulas`'.  A mini-batch's loss is a few thousand numbers: a
parallel launch would cost more than the work, so these loops are serial.  The
labels were checked by the loss (class labels in [0, C), targets in {-1, 1})."""
from numba import njit

from .. import formulas as f
from ..cache_stamp import stamp

_OPTS = dict(cache=True, fastmath=False)  # exp/log of extreme logits must stay exact
_ce, _se = njit(inline="always")(f.softmax_cross_entropy), njit(inline="always")(f.squared_error)
_logistic, _hinge = njit(inline="always")(f.logistic), njit(inline="always")(f.hinge)


@njit(**_OPTS)
def softmax_cross_entropy(z, labels, scale, losses, dl_dz):
    """z (N, C) logits, labels (N,) int64 in [0, C)."""
    for i in range(z.shape[0]):
        _ce(z, labels, scale, losses, dl_dz, i)


@njit(**_OPTS)
def squared_error(yhat, y, scale, losses, dl_dyhat):
    """yhat, y (N, K)."""
    for i in range(yhat.shape[0]):
        _se(yhat, y, scale, losses, dl_dyhat, i)


@njit(**_OPTS)
def logistic(yhat, y, scale, losses, dl_dyhat):
    """yhat (N,), y (N,) in {-1, 1}."""
    for i in range(yhat.shape[0]):
        _logistic(yhat, y, scale, losses, dl_dyhat, i)


@njit(**_OPTS)
def hinge(yhat, y, margin, scale, losses, dl_dyhat):
    """yhat (N,), y (N,) in {-1, 1}; margin 1: the SVM's hinge, 0: the perceptron's."""
    for i in range(yhat.shape[0]):
        _hinge(yhat, y, margin, scale, losses, dl_dyhat, i)


stamp(globals())  # the disk cache follows every kernel source
