"""The update rule over the model's one flat parameter buffer on the device."""
from numba import cuda

from .. import formulas
from ._grid import over
from ..cache_stamp import stamp

_sgd = cuda.jit(device=True, inline=True)(formulas.sgd)


@cuda.jit(cache=True)
def _sgd_step(params, grads, velocity, lr, momentum, weight_decay):
    for i in range(cuda.grid(1), params.size, cuda.gridsize(1)):
        _sgd(params, grads, velocity, lr, momentum, weight_decay, i)


sgd_step = over(_sgd_step)  # PyTorch's SGD (nnumba.kernels.formulas.sgd), flat arrays


stamp(globals())  # the disk cache follows every kernel source
