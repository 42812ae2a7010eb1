"""Adaptive average pooling on the device with PyTorch's bins: the formulas of
:mod:`nnumba.kernels.formulas`, the CPU's too.  Forward: one thread per output;
backward: a gather, one thread per input pixel over the (few) bins that hold it."""
from numba import cuda

from .. import formulas
from ._grid import over, unravel
from ..window_checks import check_adaptive, check_arrays
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


_forward_all = over(_adaptive_avgpool2d_forward, lambda x, y: y.size)
_backward_all = over(_adaptive_avgpool2d_backward, lambda dl_dy, dl_dx: dl_dx.size)


# (the arrays checked first, as the CPU set's: a thread would index past a short input)
def adaptive_avgpool2d_forward(x, y):
    """y (N, C, Ho, Wo) = the mean of each bin of x (N, C, H, W)."""
    check_arrays("adaptive_avgpool2d_forward", {"x": x}, {"y": y})
    check_adaptive("adaptive_avgpool2d_forward", x, y)
    _forward_all(x, y)


def adaptive_avgpool2d_backward(dl_dy, dl_dx):
    """dl_dx (N, C, H, W) = each output's gradient spread evenly over its bin."""
    check_arrays("adaptive_avgpool2d_backward", {"dl_dy": dl_dy}, {"dl_dx": dl_dx})
    check_adaptive("adaptive_avgpool2d_backward", dl_dx, dl_dy)
    _backward_all(dl_dy, dl_dx)


stamp(globals())  # the disk cache follows every kernel source
