"""Adaptive average pooling on the device with PyTorch's bins (output cell i of Ho
covers input rows floor(i*H/Ho) .. ceil((i+1)*H/Ho) - 1): the twin of
nnumba.kernels.cpu.adaptive_pool. Forward: one thread per output; backward: a
gather, one thread per input pixel over the (few) bins that hold it."""
from numba import cuda

from ._grid import FLOATS, arr, launch_1d


@cuda.jit(device=True, inline=True)
def _bin(i, size, out):
    return (i * size) // out, ((i + 1) * size + out - 1) // out


@cuda.jit(cache=True)
def _forward(x, y):
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for t in range(cuda.grid(1), N * C * Ho * Wo, cuda.gridsize(1)):
        j = t % Wo
        i = (t // Wo) % Ho
        c = (t // (Wo * Ho)) % C
        n = t // (Wo * Ho * C)
        h0, h1 = _bin(i, H, Ho)
        w0, w1 = _bin(j, W, Wo)
        s = x.dtype.type(0)
        for r in range(h0, h1):
            for q in range(w0, w1):
                s += x[n, c, r, q]
        y[n, c, i, j] = s / x.dtype.type((h1 - h0) * (w1 - w0))


@cuda.jit(cache=True)
def _backward(dl_dy, dl_dx):
    N, C, H, W = dl_dx.shape
    Ho, Wo = dl_dy.shape[2], dl_dy.shape[3]
    for t in range(cuda.grid(1), N * C * H * W, cuda.gridsize(1)):
        q = t % W
        r = (t // W) % H
        c = (t // (W * H)) % C
        n = t // (W * H * C)
        s = dl_dx.dtype.type(0)
        for i in range(Ho):
            h0, h1 = _bin(i, H, Ho)
            if h0 <= r < h1:
                for j in range(Wo):
                    w0, w1 = _bin(j, W, Wo)
                    if w0 <= q < w1:
                        s += dl_dy[n, c, i, j] / dl_dx.dtype.type((h1 - h0) * (w1 - w0))
        dl_dx[n, c, r, q] = s


def adaptive_avgpool2d_forward(x, y):
    """y (N, C, Ho, Wo) = the mean of each bin of x (N, C, H, W)."""
    if y.size:
        launch_1d(_forward, y.size)(x, y)


def adaptive_avgpool2d_backward(dl_dy, dl_dx):
    """dl_dx (N, C, H, W) = each output's gradient spread evenly over its bin."""
    if dl_dx.size:
        launch_1d(_backward, dl_dx.size)(dl_dy, dl_dx)


PTX_SIGNATURES = {
    "_forward": [(arr(t, 4), arr(t, 4)) for t in FLOATS],
    "_backward": [(arr(t, 4), arr(t, 4)) for t in FLOATS],
}
