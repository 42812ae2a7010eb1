"""Loss kernels: each writes per-sample losses and the gradient with respect to the
prediction, ``scale`` multiplying the gradient (1/N for a mean, 1 for a sum); the formulas are
:mod:`nnumba.kernels.formulas`'.  A mini-batch's loss is a few thousand numbers: a
parallel launch would cost more than the work, so these loops are serial.  The
loss checked the labels (targets in {-1, 1}); each kernel checks its arrays
(:mod:`..row_checks`), and the cross-entropy its class labels' range, before it
reads past an array."""
from numba import njit

from .. import formulas as f
from ..cache_stamp import stamp
from ..flat import checked
from ..row_checks import check_loss
from ...errors import LabelError

_OPTS = dict(cache=True, fastmath=False)  # exp/log of extreme logits must stay exact
_ce, _se = njit(inline="always")(f.softmax_cross_entropy), njit(inline="always")(f.squared_error)
_logistic_at, _hinge_at = njit(inline="always")(f.logistic), njit(inline="always")(f.hinge)


@njit(**_OPTS)
def _softmax_cross_entropy(z, labels, scale, losses, dl_dz):
    """z (N, C) logits, labels (N,) int64 in [0, C)."""
    for i in range(z.shape[0]):
        if labels[i] < 0 or labels[i] >= z.shape[1]:
            raise LabelError("softmax_cross_entropy: a label lies outside [0, C)")
        _ce(z, labels, scale, losses, dl_dz, i)


@njit(**_OPTS)
def _squared_error(yhat, y, scale, losses, dl_dyhat):
    """yhat, y (N, K)."""
    for i in range(yhat.shape[0]):
        _se(yhat, y, scale, losses, dl_dyhat, i)


@njit(**_OPTS)
def _logistic(yhat, y, scale, losses, dl_dyhat):
    """yhat (N,), y (N,) in {-1, 1}."""
    for i in range(yhat.shape[0]):
        _logistic_at(yhat, y, scale, losses, dl_dyhat, i)


@njit(**_OPTS)
def _hinge(yhat, y, margin, scale, losses, dl_dyhat):
    """yhat (N,), y (N,) in {-1, 1}; margin 1: the SVM's hinge, 0: the perceptron's."""
    for i in range(yhat.shape[0]):
        _hinge_at(yhat, y, margin, scale, losses, dl_dyhat, i)


# (the arrays' shapes, dtypes and overlap, shared with the CUDA set; the labels' values
# are checked in the loop, where they are read)
softmax_cross_entropy = checked(_softmax_cross_entropy, "softmax_cross_entropy", check_loss)
squared_error = checked(_squared_error, "squared_error", check_loss)
logistic = checked(_logistic, "logistic", check_loss)
hinge = checked(_hinge, "hinge", check_loss)


stamp(globals())  # the disk cache follows every kernel source
