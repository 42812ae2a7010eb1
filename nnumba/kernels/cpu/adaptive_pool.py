"""Adaptive average pooling with PyTorch's bins (output cell i of Ho covers input
rows floor(i*H/Ho) .. ceil((i+1)*H/Ho) - 1; bins may overlap or repeat rows).

Arrays are (N, C, H, W), C-contiguous, shapes checked by the layer.  Each (n, c)
plane is handled by one thread; the bin formulas are the GPU's too
(:mod:`nnumba.kernels.formulas`), and the backward gathers, so overlapping bins
never race.
"""
import numpy as np
from numba import njit, prange

from .. import formulas
from ..cache_stamp import stamp
from ..window_checks import check_adaptive, check_arrays
from .layout import _copy_run

# No fastmath: the formulas scale each value before summing (no overflow near the
# dtype's maximum), which LLVM could otherwise factor back out of the sum.
_OPTS = dict(parallel=True, cache=True)

_avg = njit(inline="always")(formulas.adaptive_avg)
_avg_grad = njit(inline="always")(formulas.adaptive_avg_grad)


@njit(**_OPTS)
def _adaptive_avgpool2d_forward(x, y):
    """y (N, C, Ho, Wo) = the mean of each bin of x (N, C, H, W)."""
    N, C, Ho, Wo = y.shape
    if Ho == x.shape[2] and Wo == x.shape[3]:
        # one-pixel bins (AlexNet's 6 x 6): each mean is its pixel, as the formula gives it
        _copy_run(y.reshape(y.size), x.reshape(x.size), x.size)
        return
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        for i in range(Ho):
            for j in range(Wo):
                _avg(x, y, n, c, i, j)


@njit(**_OPTS)
def _adaptive_avgpool2d_backward(dl_dy, dl_dx):
    """dl_dx (N, C, H, W) = each output's gradient spread evenly over its bin (written fully)."""
    N, C, H, W = dl_dx.shape
    if H == dl_dy.shape[2] and W == dl_dy.shape[3]:  # one-pixel bins
        _copy_run(dl_dx.reshape(dl_dx.size), dl_dy.reshape(dl_dy.size), dl_dy.size)
        return
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        for r in range(H):
            for q in range(W):
                _avg_grad(dl_dy, dl_dx, n, c, r, q)


def adaptive_avgpool2d_forward(x, y):
    """y (N, C, Ho, Wo) = the mean of each bin of x (N, C, H, W)."""
    check_arrays("adaptive_avgpool2d_forward", {"x": x}, {"y": y})
    check_adaptive("adaptive_avgpool2d_forward", x, y)
    x = np.ascontiguousarray(x)  # (a strided view: its one-pixel bins reshape it)
    _adaptive_avgpool2d_forward(x, y)


def adaptive_avgpool2d_backward(dl_dy, dl_dx):
    """dl_dx (N, C, H, W) = each output's gradient spread evenly over its bin (written fully)."""
    check_arrays("adaptive_avgpool2d_backward", {"dl_dy": dl_dy}, {"dl_dx": dl_dx})
    check_adaptive("adaptive_avgpool2d_backward", dl_dx, dl_dy)
    dl_dy = np.ascontiguousarray(dl_dy)
    _adaptive_avgpool2d_backward(dl_dy, dl_dx)


stamp(globals())  # the disk cache follows every kernel source
