"""Convolution kernels on the device (cross-correlation with zero padding and
stride, NCHW): the twins of nnumba.kernels.cpu.conv, same entry points and
signatures (listed there: which outputs are written fully, which accumulate).

A 1-D convolution is the 2-D one on a height-1 view (N, C, 1, L).

Direct kernels, no im2col buffers:
* forward: one thread per output (n, d, i, j), j fastest, so a warp reads
  neighbouring input words and one weight (a broadcast);
* input gradient: a gather, one thread per input pixel summing over the
  outputs whose window covers it (no atomics, deterministic);
* weight gradient: one block per weight (d, c, ki, kj) reducing over all
  (n, i, j) in shared memory (the lecture's conv1 has 800 weights but 57,600
  products each: a thread per weight would leave the GPU idle); the bias
  gradient likewise, one block per output channel.

The arguments are checked first, by the CPU set's checks (:mod:`..window_checks`).
"""
from numba import cuda

from ..geometry import pair
from ..window_checks import check_arrays, check_channel_bias, check_conv
from ._grid import THREADS, launch_1d, unravel
from ..cache_stamp import stamp

RED = THREADS  # threads of a reduction block (a power of two; the shared array's size)


@cuda.jit(cache=True, fastmath=True)
def _forward(x, w, b, has_bias, sh, sw, ph, pw, out):
    N, C, H, W = x.shape
    D, _, kh, kw = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    total = N * D * Ho * Wo
    for t in range(cuda.grid(1), total, cuda.gridsize(1)):
        n, d, i, j = unravel(t, D, Ho, Wo)
        s = b[d] if has_bias else x.dtype.type(0)
        r0 = i * sh - ph
        q0 = j * sw - pw
        for c in range(C):
            for ki in range(kh):
                r = r0 + ki
                if 0 <= r < H:
                    for kj in range(kw):
                        q = q0 + kj
                        if 0 <= q < W:
                            s += x[n, c, r, q] * w[d, c, ki, kj]
        out[n, d, i, j] = s


@cuda.jit(cache=True, fastmath=True)
def _backward_input(dy, w, sh, sw, ph, pw, dx):
    N, C, H, W = dx.shape
    D, _, kh, kw = w.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    total = N * C * H * W
    for t in range(cuda.grid(1), total, cuda.gridsize(1)):
        n, c, r, q = unravel(t, C, H, W)
        s = dx.dtype.type(0)
        for ki in range(kh):
            u = r + ph - ki          # = i * sh for the output row i that reads r
            if u >= 0 and u % sh == 0 and u // sh < Ho:
                i = u // sh
                for kj in range(kw):
                    v = q + pw - kj
                    if v >= 0 and v % sw == 0 and v // sw < Wo:
                        j = v // sw
                        for d in range(D):
                            s += dy[n, d, i, j] * w[d, c, ki, kj]
        dx[n, c, r, q] = s


@cuda.jit(device=True, inline=True)
def _block_sum(partial, s):
    # Tree reduction of one value per thread (blockDim.x threads, a power of two
    # <= RED); the sum is returned to every thread.
    tid = cuda.threadIdx.x
    partial[tid] = s
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if tid < step:
            partial[tid] += partial[tid + step]
        cuda.syncthreads()
        step //= 2
    total = partial[0]
    cuda.syncthreads()  # partial is reused by the block's next item
    return total


@cuda.jit(cache=True, fastmath=True)
def _backward_weight(x, dy, sh, sw, ph, pw, dw):
    # Block g owns weight g = ((d * C + c) * kh + ki) * kw + kj.
    N, C, H, W = x.shape
    D, _, kh, kw = dw.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    partial = cuda.shared.array(RED, x.dtype)
    for g in range(cuda.blockIdx.x, D * C * kh * kw, cuda.gridDim.x):
        d, c, ki, kj = unravel(g, C, kh, kw)
        s = x.dtype.type(0)
        for t in range(cuda.threadIdx.x, N * Ho * Wo, cuda.blockDim.x):
            _, n, i, j = unravel(t, N, Ho, Wo)
            r = i * sh - ph + ki
            q = j * sw - pw + kj
            if 0 <= r < H and 0 <= q < W:
                s += x[n, c, r, q] * dy[n, d, i, j]
        total = _block_sum(partial, s)
        if cuda.threadIdx.x == 0:
            dw[d, c, ki, kj] += total


@cuda.jit(cache=True, fastmath=True)
def _backward_bias(dy, db):
    N, D, Ho, Wo = dy.shape
    partial = cuda.shared.array(RED, dy.dtype)
    for d in range(cuda.blockIdx.x, D, cuda.gridDim.x):
        s = dy.dtype.type(0)
        for t in range(cuda.threadIdx.x, N * Ho * Wo, cuda.blockDim.x):
            _, n, i, j = unravel(t, N, Ho, Wo)
            s += dy[n, d, i, j]
        total = _block_sum(partial, s)
        if cuda.threadIdx.x == 0:
            db[d] += total


def conv2d_forward(x, w, b, stride, pad, out, keep=None):
    """out (N, D, Ho, Wo) = cross-correlation of x (N, C, H, W) with w
    (D, C, kh, kw), zero padding pad, stride stride, plus b (D,) (b may be None).
    Returns out.  ``keep``: as the CPU set's; these kernels keep nothing."""
    check_arrays("conv2d_forward", {"x": x, "w": w, "b": b}, {"out": out}, optional={"b"})
    check_conv("conv2d_forward", x.shape, w.shape, stride, pad, out.shape)
    check_channel_bias("conv2d_forward", b, w.shape[0])
    return _launch_forward(x, w, b, stride, pad, out)


# The launches alone, for the fused kernels (conv_pool), which check their arguments once.
def _launch_forward(x, w, b, stride, pad, out):
    has_bias = b is not None
    launch_1d(_forward, out.size)(x, w, b if has_bias else w.reshape(w.size), has_bias,
                                  *pair(stride), *pair(pad), out)
    return out


def conv2d_backward_input(dy, w, stride, pad, dx_out, keep=None):
    """dx_out (N, C, H, W) = dL/dx given dy (N, D, Ho, Wo) and w; written fully."""
    check_arrays("conv2d_backward_input", {"dy": dy, "w": w}, {"dx_out": dx_out})
    check_conv("conv2d_backward_input", dx_out.shape, w.shape, stride, pad, dy.shape)
    return _launch_backward_input(dy, w, stride, pad, dx_out)


def _launch_backward_input(dy, w, stride, pad, dx_out):
    launch_1d(_backward_input, dx_out.size)(dy, w, *pair(stride), *pair(pad), dx_out)
    return dx_out


def conv2d_backward_weight(x, dy, stride, pad, dw_out, db_out, keep=None):
    """dw_out (D, C, kh, kw) += dL/dw and db_out (D,) += dL/db (db_out may be None)."""
    check_arrays("conv2d_backward_weight", {"x": x, "dy": dy}, {"dw_out": dw_out, "db_out": db_out},
                 optional={"db_out"})
    check_conv("conv2d_backward_weight", x.shape, dw_out.shape, stride, pad, dy.shape)
    check_channel_bias("conv2d_backward_weight", db_out, dw_out.shape[0])
    _launch_backward_weight(x, dy, stride, pad, dw_out, db_out)


def _launch_backward_weight(x, dy, stride, pad, dw_out, db_out):
    if x.shape[0] == 0 or dw_out.size == 0:
        return
    launch_1d(_backward_weight, dw_out.size, per_block=True)(x, dy, *pair(stride), *pair(pad),
                                                             dw_out)
    if db_out is not None:
        launch_1d(_backward_bias, db_out.size, per_block=True)(dy, db_out)


stamp(globals())  # the disk cache follows every kernel source
