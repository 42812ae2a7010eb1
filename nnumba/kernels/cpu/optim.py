"""The update rule over the model's one flat parameter buffer."""
from numba import njit, prange

from .. import formulas
from ..cache_stamp import stamp
from ..flat import check_flat_floats

_sgd = njit(inline="always")(formulas.sgd)


@njit(parallel=True, cache=True, fastmath=True)
def _sgd_step(params, grads, velocity, lr, momentum, weight_decay):
    """PyTorch's SGD (:func:`nnumba.kernels.formulas.sgd`); with momentum 0 the
    velocity is left as it is.  Scalars arrive in the params' dtype."""
    for i in prange(params.size):
        _sgd(params, grads, velocity, lr, momentum, weight_decay, i)


def sgd_step(params, grads, velocity, lr, momentum, weight_decay):
    """PyTorch's SGD on flat arrays of one float dtype (a shorter grads or velocity
    was read and written past its end); scalars in the params' dtype."""
    check_flat_floats("sgd_step", params, grads, velocity, outputs=3)
    _sgd_step(params, grads, velocity, lr, momentum, weight_decay)


stamp(globals())  # the disk cache follows every kernel source
