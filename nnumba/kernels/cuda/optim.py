"""The update rule over the model's one flat parameter buffer on the device."""
from numba import cuda

from .. import formulas
from ._grid import over
from ..flat import check_flat_floats
from ..cache_stamp import stamp

_sgd = cuda.jit(device=True, inline=True)(formulas.sgd)


@cuda.jit(cache=True)
def _sgd_step(params, grads, velocity, lr, momentum, weight_decay):
    for i in range(cuda.grid(1), params.size, cuda.gridsize(1)):
        _sgd(params, grads, velocity, lr, momentum, weight_decay, i)


_sgd_all = over(_sgd_step)


def sgd_step(params, grads, velocity, lr, momentum, weight_decay):
    """PyTorch's SGD (nnumba.kernels.formulas.sgd) on flat arrays of one float dtype."""
    check_flat_floats("sgd_step", params, grads, velocity, outputs=3)
    _sgd_all(params, grads, velocity, lr, momentum, weight_decay)


stamp(globals())  # the disk cache follows every kernel source
