"""Adaptive average pooling kernels with PyTorch's bins: output cell i of Ho covers
input rows floor(i*H/Ho) .. ceil((i+1)*H/Ho) - 1 (bins may overlap or repeat rows).

Arrays are (N, C, H, W), C-contiguous, shapes checked by the layer. Each (n, c)
plane is handled by one thread, so overlapping bins never race in backward.
"""
from numba import njit, prange

_OPTS = dict(parallel=True, cache=True, fastmath=True)


@njit(inline="always")
def _bin(i, size, out):
    """[start, end) of output cell i: floor(i*size/out), ceil((i+1)*size/out)."""
    return (i * size) // out, ((i + 1) * size + out - 1) // out


@njit(**_OPTS)
def adaptive_avgpool2d_forward(x, y):
    """y (N, C, Ho, Wo) = the mean of each bin of x (N, C, H, W)."""
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        for i in range(ho):
            h0, h1 = _bin(i, h, ho)
            for j in range(wo):
                w0, w1 = _bin(j, w, wo)
                s = x.dtype.type(0)
                for r in range(h0, h1):
                    for q in range(w0, w1):
                        s += x[b, ch, r, q]
                y[b, ch, i, j] = s / ((h1 - h0) * (w1 - w0))


@njit(**_OPTS)
def adaptive_avgpool2d_backward(dl_dy, dl_dx):
    """dl_dx (N, C, H, W) = each output's gradient spread evenly over its bin (overwrites)."""
    n, c, h, w = dl_dx.shape
    ho, wo = dl_dy.shape[2], dl_dy.shape[3]
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        for r in range(h):
            for q in range(w):
                dl_dx[b, ch, r, q] = 0
        for i in range(ho):
            h0, h1 = _bin(i, h, ho)
            for j in range(wo):
                w0, w1 = _bin(j, w, wo)
                g = dl_dy[b, ch, i, j] / ((h1 - h0) * (w1 - w0))
                for r in range(h0, h1):
                    for q in range(w0, w1):
                        dl_dx[b, ch, r, q] += g
