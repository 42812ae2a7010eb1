"""Pooling kernels on the device (NCHW, no padding), plus fused ReLU + max-pool:
the twins of nnumba.kernels.cpu.pool, same entry points, signatures and
conventions (see that module: argmax is the flat index i*W + j of the FIRST
maximum in row-major window order within its (H, W) plane; NaN propagates, as in
PyTorch; the fused forward is relu then max-pool, its backward passes the gradient
except where the pooled output is <= 0, NaN included).

A 1-D pool is the 2-D one on a height-1 view.  Forward: one thread per output
(average windows by the formulas shared with the CPU, :mod:`nnumba.kernels.formulas`). Max-pool backward has no window geometry in its
signature (the CPU twin's), so it scatters: dx is zeroed, then each output adds
its gradient at its argmax with an atomic add (uncontended for non-overlapping
windows). Average-pool backward knows the geometry and gathers instead: one
thread per input pixel, no atomics.
"""
import math

from numba import cuda

from .. import formulas
from ..geometry import pair
from ._grid import launch_1d, unravel
from .arrays import fill
from ..window_checks import check_argmax, check_arrays, check_pool, check_unpool
from ..cache_stamp import stamp

_avg_window = cuda.jit(device=True, inline=True)(formulas.avg_window)
_avg_window_grad = cuda.jit(device=True, inline=True)(formulas.avg_window_grad)


@cuda.jit(cache=True)
def _maxpool_forward(x, kh, kw, sh, sw, relu, out, argmax):
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    zero = x.dtype.type(0)
    for t in range(cuda.grid(1), N * C * Ho * Wo, cuda.gridsize(1)):
        n, c, i, j = unravel(t, C, Ho, Wo)
        r0 = i * sh
        q0 = j * sw
        best = x[n, c, r0, q0]
        at = r0 * W + q0
        for ki in range(kh):
            for kj in range(kw):
                v = x[n, c, r0 + ki, q0 + kj]
                if v > best or v != v:  # NaN propagates, as in PyTorch (and on the CPU)
                    best = v
                    at = (r0 + ki) * W + q0 + kj
        if relu and best <= zero:  # (NaN stays NaN, as relu(NaN))
            best = zero
            at = r0 * W + q0
        out[n, c, i, j] = best
        argmax[n, c, i, j] = at


@cuda.jit(cache=True)
def _maxpool_backward(dy, argmax, relu, y, dx):
    N, C, H, W = dx.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    zero = dy.dtype.type(0)
    for t in range(cuda.grid(1), N * C * Ho * Wo, cuda.gridsize(1)):
        n, c, i, j = unravel(t, C, Ho, Wo)
        if relu and y[n, c, i, j] <= zero:  # at NaN the gradient passes, as torch's
            continue
        at = argmax[n, c, i, j]
        if 0 <= at < H * W:
            cuda.atomic.add(dx, (n, c, at // W, at % W), dy[n, c, i, j])
        else:  # no index of this plane (the host check copies none): a NaN to report
            cuda.atomic.add(dx, (n, c, 0, 0), math.nan)


@cuda.jit(cache=True)
def _avgpool_forward(x, kh, kw, sh, sw, out):
    N, C, Ho, Wo = out.shape
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, i, j = unravel(t, C, Ho, Wo)
        _avg_window(x, kh, kw, sh, sw, out, n, c, i, j)


@cuda.jit(cache=True)
def _avgpool_backward(dy, kh, kw, sh, sw, dx):
    N, C, H, W = dx.shape
    for t in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        n, c, r, q = unravel(t, C, H, W)
        _avg_window_grad(dy, kh, kw, sh, sw, dx, n, c, r, q)


# The arguments checked first, by the CPU set's checks (a thread would index past an
# array of the wrong shape).
def _check_forward(name, x, kernel, stride, out, argmax_out):
    check_arrays(name, {"x": x}, {"out": out})
    check_pool(name, x.shape, kernel, stride, out.shape)
    check_argmax(name, argmax_out, out.shape)


def _check_backward(name, dy, argmax, y, dx):
    check_arrays(name, {"dy": dy, "out": y}, {"dx_out": dx})
    check_unpool(name, dy, y, dx)
    check_argmax(name, argmax, dy.shape, dx.shape[2] * dx.shape[3])


def _check_average(name, src, kernel, stride, dst):
    forward = name == "avgpool2d_forward"
    check_arrays(name, {"x" if forward else "dy": src}, {"out" if forward else "dx_out": dst})
    x, y = (src, dst) if forward else (dst, src)
    check_pool(name, x.shape, kernel, stride, y.shape)


def maxpool2d_forward(x, kernel, stride, out, argmax_out):
    """out (N, C, Ho, Wo) = window maxima of x (N, C, H, W); argmax_out (same
    shape, int32/int64) = flat index of the first maximum in its plane."""
    _check_forward("maxpool2d_forward", x, kernel, stride, out, argmax_out)
    launch_1d(_maxpool_forward, out.size)(x, *pair(kernel), *pair(stride), False, out, argmax_out)
    return out


def relu_maxpool2d_forward(x, kernel, stride, out, argmax_out):
    """Fused relu then max-pool: out = maxpool(relu(x))."""
    _check_forward("relu_maxpool2d_forward", x, kernel, stride, out, argmax_out)
    return _launch_relu_maxpool(x, kernel, stride, out, argmax_out)


# The launches alone, for the fused kernels (conv_pool), which check their arguments once.
def _launch_relu_maxpool(x, kernel, stride, out, argmax_out):
    launch_1d(_maxpool_forward, out.size)(x, *pair(kernel), *pair(stride), True, out, argmax_out)
    return out


def maxpool2d_backward(dy, argmax, dx_out):
    """dx_out (N, C, H, W) = dy added at argmax, zero elsewhere (written fully)."""
    _check_backward("maxpool2d_backward", dy, argmax, dy, dx_out)
    fill(dx_out, 0)
    launch_1d(_maxpool_backward, dy.size)(dy, argmax, False, dy, dx_out)
    return dx_out


def relu_maxpool2d_backward(dy, argmax, out, dx_out):
    """Backward of relu_maxpool2d_forward: the gradient flows only where out > 0."""
    _check_backward("relu_maxpool2d_backward", dy, argmax, out, dx_out)
    return _launch_relu_unpool(dy, argmax, out, dx_out)


def _launch_relu_unpool(dy, argmax, out, dx_out):
    fill(dx_out, 0)
    launch_1d(_maxpool_backward, dy.size)(dy, argmax, True, out, dx_out)
    return dx_out


def avgpool2d_forward(x, kernel, stride, out):
    """out (N, C, Ho, Wo) = window means of x (N, C, H, W)."""
    _check_average("avgpool2d_forward", x, kernel, stride, out)
    launch_1d(_avgpool_forward, out.size)(x, *pair(kernel), *pair(stride), out)
    return out


def avgpool2d_backward(dy, kernel, stride, dx_out):
    """dx_out (N, C, H, W) = dL/dx for avgpool2d_forward, written fully."""
    _check_average("avgpool2d_backward", dy, kernel, stride, dx_out)
    launch_1d(_avgpool_backward, dx_out.size)(dy, *pair(kernel), *pair(stride), dx_out)
    return dx_out


stamp(globals())  # the disk cache follows every kernel source
