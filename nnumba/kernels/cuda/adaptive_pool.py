"""Adaptive average pooling on the device with PyTorch's bins: the formulas of
:mod:`nnumba.kernels.formulas`, the CPU's too.  Forward: one thread per output;
backward: a gather, one thread per input pixel over the (few) bins that hold it."""
from numba import cuda

from .. import formulas
from ._grid import over, unravel
from ..cache_stamp import stamp

_avg = cuda.jit(device=True, inline=True)(formulas.adaptive_avg)
_avg_grad = cuda.jit(device=True, inline=True)(formulas.adaptive_avg_grad)


@cuda.jit(cache=True)
def _adaptive_avgpool2d_forward(x, y):
    N, C, Ho, Wo = y.shape
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, c, i, j = unravel(t, C, Ho, Wo)
        _avg(x, y, n, c, i, j)


@cuda.jit(cache=True)
def _adaptive_avgpool2d_backward(dl_dy, dl_dx):
    N, C, H, W = dl_dx.shape
    for t in range(cuda.grid(1), dl_dx.size, cuda.gridsize(1)):
        n, c, r, q = unravel(t, C, H, W)
        _avg_grad(dl_dy, dl_dx, n, c, r, q)


adaptive_avgpool2d_forward = over(_adaptive_avgpool2d_forward, lambda x, y: y.size)
adaptive_avgpool2d_backward = over(_adaptive_avgpool2d_backward, lambda dl_dy, dl_dx: dl_dx.size)


stamp(globals())  # the disk cache follows every kernel source
