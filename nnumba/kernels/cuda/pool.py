"""Pooling kernels on the device (NCHW, no padding), plus fused ReLU + max-pool:
the twins of nnumba.kernels.cpu.pool, same entry points, signatures and
conventions (see that module: argmax is the flat index i*W + j of the FIRST
maximum in row-major window order within its (H, W) plane; NaN never wins;
the fused forward is relu then max-pool, its backward passes the gradient only
where the pooled output is > 0).

Forward: one thread per output. Max-pool backward has no window geometry in its
signature (the CPU twin's), so it scatters: dx is zeroed, then each output adds
its gradient at its argmax with an atomic add (uncontended for non-overlapping
windows). Average-pool backward knows the geometry and gathers instead: one
thread per input pixel, no atomics.
"""
from numba import cuda

from ._grid import FLOATS, arr, b1, i32, i64, launch_1d, pair
from .arrays import fill


@cuda.jit(cache=True)
def _maxpool_forward(x, kh, kw, sh, sw, relu, out, argmax):
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    zero = x.dtype.type(0)
    for t in range(cuda.grid(1), N * C * Ho * Wo, cuda.gridsize(1)):
        j = t % Wo
        i = (t // Wo) % Ho
        c = (t // (Wo * Ho)) % C
        n = t // (Wo * Ho * C)
        r0 = i * sh
        q0 = j * sw
        best = x[n, c, r0, q0]
        at = r0 * W + q0
        for ki in range(kh):
            for kj in range(kw):
                v = x[n, c, r0 + ki, q0 + kj]
                if v > best:
                    best = v
                    at = (r0 + ki) * W + q0 + kj
        if relu and not best > zero:
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
        j = t % Wo
        i = (t // Wo) % Ho
        c = (t // (Wo * Ho)) % C
        n = t // (Wo * Ho * C)
        if relu and not y[n, c, i, j] > zero:
            continue
        at = argmax[n, c, i, j]
        cuda.atomic.add(dx, (n, c, at // W, at % W), dy[n, c, i, j])


@cuda.jit(cache=True)
def _avgpool_forward(x, kh, kw, sh, sw, out):
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    scale = x.dtype.type(1) / x.dtype.type(kh * kw)
    for t in range(cuda.grid(1), N * C * Ho * Wo, cuda.gridsize(1)):
        j = t % Wo
        i = (t // Wo) % Ho
        c = (t // (Wo * Ho)) % C
        n = t // (Wo * Ho * C)
        s = x.dtype.type(0)
        for ki in range(kh):
            for kj in range(kw):
                s += x[n, c, i * sh + ki, j * sw + kj]
        out[n, c, i, j] = s * scale


@cuda.jit(cache=True)
def _avgpool_backward(dy, kh, kw, sh, sw, dx):
    N, C, H, W = dx.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    scale = dx.dtype.type(1) / dx.dtype.type(kh * kw)
    for t in range(cuda.grid(1), N * C * H * W, cuda.gridsize(1)):
        q = t % W
        r = (t // W) % H
        c = (t // (W * H)) % C
        n = t // (W * H * C)
        # outputs i with i*sh <= r < i*sh + kh, i.e. ceil((r-kh+1)/sh) <= i <= r//sh
        i_lo = max(0, (r - kh + sh) // sh)
        i_hi = min(Ho - 1, r // sh)
        j_lo = max(0, (q - kw + sw) // sw)
        j_hi = min(Wo - 1, q // sw)
        s = dx.dtype.type(0)
        for i in range(i_lo, i_hi + 1):
            for j in range(j_lo, j_hi + 1):
                s += dy[n, c, i, j]
        dx[n, c, r, q] = s * scale


def maxpool2d_forward(x, kernel, stride, out, argmax_out):
    """out (N, C, Ho, Wo) = window maxima of x (N, C, H, W); argmax_out (same
    shape, int32/int64) = flat index of the first maximum in its plane."""
    kh, kw = pair(kernel)
    sh, sw = pair(stride)
    if out.size:
        launch_1d(_maxpool_forward, out.size)(x, kh, kw, sh, sw, False, out, argmax_out)
    return out


def relu_maxpool2d_forward(x, kernel, stride, out, argmax_out):
    """Fused relu then max-pool: out = maxpool(relu(x))."""
    kh, kw = pair(kernel)
    sh, sw = pair(stride)
    if out.size:
        launch_1d(_maxpool_forward, out.size)(x, kh, kw, sh, sw, True, out, argmax_out)
    return out


def maxpool2d_backward(dy, argmax, dx_out):
    """dx_out (N, C, H, W) = dy added at argmax, zero elsewhere (written fully)."""
    fill(dx_out, 0)
    if dy.size:
        launch_1d(_maxpool_backward, dy.size)(dy, argmax, False, dy, dx_out)
    return dx_out


def relu_maxpool2d_backward(dy, argmax, out, dx_out):
    """Backward of relu_maxpool2d_forward: the gradient flows only where out > 0."""
    fill(dx_out, 0)
    if dy.size:
        launch_1d(_maxpool_backward, dy.size)(dy, argmax, True, out, dx_out)
    return dx_out


def avgpool2d_forward(x, kernel, stride, out):
    """out (N, C, Ho, Wo) = window means of x (N, C, H, W)."""
    kh, kw = pair(kernel)
    sh, sw = pair(stride)
    if out.size:
        launch_1d(_avgpool_forward, out.size)(x, kh, kw, sh, sw, out)
    return out


def avgpool2d_backward(dy, kernel, stride, dx_out):
    """dx_out (N, C, H, W) = dL/dx for avgpool2d_forward, written fully."""
    kh, kw = pair(kernel)
    sh, sw = pair(stride)
    if dx_out.size:
        launch_1d(_avgpool_backward, dx_out.size)(dy, kh, kw, sh, sw, dx_out)
    return dx_out


# ---- 1-D: (N, C, L) viewed as (N, C, 1, L) --------------------------------

def _h1(a):
    return a.reshape(a.shape[0], a.shape[1], 1, a.shape[2])


def maxpool1d_forward(x, kernel, stride, out, argmax_out):
    maxpool2d_forward(_h1(x), (1, int(kernel)), (1, int(stride)), _h1(out), _h1(argmax_out))
    return out


def relu_maxpool1d_forward(x, kernel, stride, out, argmax_out):
    relu_maxpool2d_forward(_h1(x), (1, int(kernel)), (1, int(stride)), _h1(out),
                           _h1(argmax_out))
    return out


def maxpool1d_backward(dy, argmax, dx_out):
    maxpool2d_backward(_h1(dy), _h1(argmax), _h1(dx_out))
    return dx_out


def relu_maxpool1d_backward(dy, argmax, out, dx_out):
    relu_maxpool2d_backward(_h1(dy), _h1(argmax), _h1(out), _h1(dx_out))
    return dx_out


def avgpool1d_forward(x, kernel, stride, out):
    avgpool2d_forward(_h1(x), (1, int(kernel)), (1, int(stride)), _h1(out))
    return out


def avgpool1d_backward(dy, kernel, stride, dx_out):
    avgpool2d_backward(_h1(dy), (1, int(kernel)), (1, int(stride)), _h1(dx_out))
    return dx_out


_A4 = [arr(t, 4) for t in FLOATS]
PTX_SIGNATURES = {
    "_maxpool_forward": [(a, i64, i64, i64, i64, b1, a, arr(ix, 4))
                         for a in _A4 for ix in (i32, i64)],
    "_maxpool_backward": [(a, arr(ix, 4), b1, a, a) for a in _A4 for ix in (i32, i64)],
    "_avgpool_forward": [(a, i64, i64, i64, i64, a) for a in _A4],
    "_avgpool_backward": [(a, i64, i64, i64, i64, a) for a in _A4],
}
