"""A convolution, the ReLU after it and a max-pool, one kernel per pass:

    conv2d_relu_maxpool2d_forward(x, w, b, stride, pad, pool_kernel, pool_stride,
                                  out, argmax_out)
    conv2d_relu_maxpool2d_backward(x, w, dy, argmax, out, stride, pad,
                                   dw_out, db_out, dx_out)

``out`` = maxpool(relu(conv(x, w) + b)) (b None: no bias); ``argmax_out`` as
relu_maxpool2d_forward gives it on the convolution's output.  Backward, ``dy``
the gradient of ``out``: dw_out and db_out (None: not wanted) ACCUMULATE, dx_out
(None: not wanted) is written fully.

Where the direct kernels take the convolution (:func:`.conv.uses_direct`: the
lecture's conv1) and the two-pass kernel the pool, each image's convolution
output stays in its core's cache: the forward pools it at once, and the weight
gradient rebuilds each image's output gradient from ``dy`` and ``argmax`` just
before it uses it.  The full-size output and its gradient (7.4 MB each for
conv1 at batch 100) never go through memory (docs/performance.md, Memory).
Anything else, and the input gradient, runs the separate kernels through a
scratch array.
"""
import numpy as np
from numba import njit

from ..cache_stamp import stamp
from ..geometry import conv2d_output_array_shape, pair
from ..window_checks import check_conv_pool, check_conv_pool_backward
from .blocks import address, call, run_blocks
from .conv import (DIRECT_TAPS, conv2d_backward_input, conv2d_backward_weight,
                   conv2d_forward, uses_direct)
from .conv_direct import (_conv_image, _dw_channels, _dw_direct, _fill_xs, _new_xs, _runs,
                          _tap_weights)
from .pool import (_maxpool_bwd_block, _maxpool_rows_block, relu_maxpool2d_backward,
                   relu_maxpool2d_forward, rows_pool)
from .workspace import scratch

_SEQ = dict(cache=True, fastmath=True)


def fusable(C, D, kernel, pool_kernel, pool_stride) -> bool:
    """Whether the one-pass kernels take a convolution of C channels to D with this
    kernel, then this max-pool, on the maps a model meets (16 outputs or more): few
    taps (the direct kernels), filters in fours, and windows the two-pass max-pool
    takes (2 or 3 wide, not overlapping).  Elsewhere fusing saves nothing, and
    Sequential keeps the layers apart (:meth:`nnumba.layers.MaxPool2d.fuse_after`)."""
    kh, kw = pair(kernel)
    (_, pkw), (_, psw) = pair(pool_kernel), pair(pool_stride)
    return C * kh * kw <= DIRECT_TAPS and D % 4 == 0 and psw == pkw and pkw in (2, 3)


def _in_cache(x, w, stride, pad, argmax, pool=None) -> bool:
    """Whether the one-pass kernels take this job: the direct convolution, filters
    in fours, int32 argmax and (forward) a ``pool`` (kernel, stride) that the
    two-pass max-pool takes."""
    Ho, Wo = conv2d_output_array_shape(x.shape, w.shape, stride, pad)[2:]
    return w.shape[0] % 4 == 0 and argmax.dtype == np.int32 and \
        uses_direct(w.shape[1], w.shape[2:], (Ho, Wo), stride) and \
        (pool is None or rows_pool(Ho, Wo, *pair(pool[0]), *pair(pool[1])))


@njit(**_SEQ)
def _conv_pool_image(n, conv, pool, x, offs, wt, b, kh, kw, sh, sw, ph, pw, nseg, L, Ho, Wo,
                     pkh, pkw, psh, relu, out, argmax):
    """out[n], argmax[n] from image n's convolution, which stays in cache.  The
    convolution's and the pool's bodies are called by their addresses ``conv`` and
    ``pool`` (blocks.call): compiled once each, not again inside this one."""
    D = wt.shape[0]
    y = np.empty((D, Ho * Wo), x.dtype)
    if call(conv, n, (x, offs, wt, b, kh, kw, sh, sw, ph, pw, nseg, L, Ho, Wo, y)) or \
            call(pool, 0, (D, y.reshape(-1), D, Ho, Wo, pkh, pkw, psh, relu,
                           out[n].reshape(-1), argmax[n].reshape(-1))):
        raise MemoryError()


@njit(**_SEQ)
def _conv_pool_dw_block(th, nth, x, dy, argmax, out, Ho, Wo, unpool, dw, relu, offs, kh, kw,
                        sh, sw, ph, pw, nseg, L, acc, dbacc):
    """conv_direct._conv_dw_block, with each image's output gradient for the block's
    channels rebuilt from dy and argmax (the ReLU passing where out > 0) by the body
    at ``unpool``; ``dw`` adds an image's terms (blocks.call, as above)."""
    N, C, D = x.shape[0], x.shape[1], dy.shape[1]
    Po = dy.shape[2] * dy.shape[3]
    R = (Ho - 1) * sh + kh
    xs = _new_xs(C, kw, R, Wo, x.dtype)
    g = np.empty((D, Ho * Wo), x.dtype)   # rows of the block's channels written
    for n in range(N):
        _fill_xs(x, n, sw, ph, pw, kw, R, Wo, xs)
        dy2, am2, out2 = dy[n].reshape(D, Po), argmax[n].reshape(D, Po), out[n].reshape(D, Po)
        for blk in range(th * (D // 4) // nth, (th + 1) * (D // 4) // nth):
            if call(unpool, blk, (4, dy2, am2, relu, out2, g)) or \
                    call(dw, blk * 4, (g, xs, offs, sh, nseg, L, Wo, acc, dbacc)):
                raise MemoryError()


def conv2d_relu_maxpool2d_forward(x, w, b, stride, pad, pool_kernel, pool_stride, out,
                                  argmax_out):
    """out (N, D, Po, Qo) = maxpool(relu(conv(x, w) + b)); argmax_out (int32 or
    int64) the first maximum's flat index in its plane of the convolution's
    output.  Both written fully.  Returns out."""
    shape = check_conv_pool("conv2d_relu_maxpool2d_forward", x, w, b, stride, pad, pool_kernel,
                            pool_stride, out, argmax_out)
    if out.size == 0:
        return out
    if not _in_cache(x, w, stride, pad, argmax_out, (pool_kernel, pool_stride)):
        y = scratch("conv_pool", shape, x.dtype)
        conv2d_forward(x, w, b, stride, pad, y)
        return relu_maxpool2d_forward(y, pool_kernel, pool_stride, out, argmax_out)
    (sh, sw), (ph, pw), (pkh, pkw), (psh, _) = (pair(stride), pair(pad), pair(pool_kernel),
                                                pair(pool_stride))
    D, Ho, Wo = shape[1:]
    b = np.zeros(D, x.dtype) if b is None else b
    offs, wt = _tap_weights(w, Ho, Wo, sh)
    conv_args = (x, offs, wt, b, w.shape[2], w.shape[3], sh, sw, ph, pw, *_runs(Ho, Wo, sh),
                 Ho, Wo)
    y = np.empty((0, 0), x.dtype)   # stands for each image's own output: its type counts
    # The pool's body first: on a cold cache another process compiling a model's other
    # max-pools then finds it in numba's cache sooner (nnumba.precompile).
    pool = address(_maxpool_rows_block, D, y.reshape(-1), D, Ho, Wo, pkh, pkw, psh, True,
                   out[0].reshape(-1), argmax_out[0].reshape(-1))
    conv = address(_conv_image, *conv_args, y)
    run_blocks(_conv_pool_image, x.shape[0], conv, pool, *conv_args, pkh, pkw, psh, True, out,
               argmax_out)
    return out


def conv2d_relu_maxpool2d_backward(x, w, dy, argmax, out, stride, pad, dw_out, db_out,
                                   dx_out):
    """dw_out += dL/dw, db_out += dL/db (None: not wanted) and dx_out = dL/dx (None:
    not wanted) of conv2d_relu_maxpool2d_forward, given its input x, w, its out
    and argmax, and dy = dL/dout."""
    shape = check_conv_pool_backward("conv2d_relu_maxpool2d_backward", x, w, dy, argmax, out,
                                     stride, pad, dw_out, db_out, dx_out)
    if x.shape[0] == 0 or dw_out.size == 0:
        return
    dy, argmax, out = (np.ascontiguousarray(a) for a in (dy, argmax, out))  # reshaped below
    if dx_out is None and _in_cache(x, w, stride, pad, argmax):
        (sh, sw), (ph, pw), (D, Ho, Wo) = pair(stride), pair(pad), shape[1:]
        db = scratch("db_discard", (D,), w.dtype) if db_out is None else db_out
        # empty arrays stand for the bodies' arguments: only their types count here
        g, po = np.empty((0, 0), x.dtype), dy.shape[2] * dy.shape[3]
        unpool = address(_maxpool_bwd_block, 4, dy[0].reshape(D, po), argmax[0].reshape(D, po),
                         True, out[0].reshape(D, po), g)
        dw = address(_dw_channels, g, np.empty(0, x.dtype), np.empty(0, np.int64), sh,
                     *_runs(Ho, Wo, sh), Wo, np.empty((0, 0), w.dtype), db)
        _dw_direct(_conv_pool_dw_block, x, (dy, argmax, out, Ho, Wo, unpool, dw, True), Ho, Wo,
                   sh, sw, ph, pw, dw_out, db)
        return
    dense = scratch("conv_pool", shape, x.dtype)
    relu_maxpool2d_backward(dy, argmax, out, dense)
    conv2d_backward_weight(x, dense, stride, pad, dw_out, db_out)
    if dx_out is not None:
        conv2d_backward_input(dense, w, stride, pad, dx_out)


stamp(globals())  # the disk cache follows every kernel source
