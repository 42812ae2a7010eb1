"""Convolution on the CPU (cross-correlation with zero padding and stride, NCHW):
the kernel set's three entry points, each choosing a strategy per shape.

    conv2d_forward(x, w, b, stride, pad, out, keep=None)                  out written fully
    conv2d_backward_input(dy, w, stride, pad, dx_out, keep=None)          dx written fully
    conv2d_backward_weight(x, dy, stride, pad, dw_out, db_out, keep=None)  ACCUMULATES

Shapes: x (N, C, H, W), w (D, C, kh, kw), b (D,) or None, dy and out (N, D, Ho, Wo)
(:func:`nnumba.kernels.geometry.conv2d_output_shape`).  C-contiguous, one float
dtype; the layers check this (Numba does no bounds checking).  A 1-D convolution
is the 2-D one on a height-1 view.

- Forward and weight gradient: the direct kernels (:mod:`.conv_direct`) when the
  reduction K = C*kh*kw is short or the output rows long, else im2col + GEMM
  (:mod:`.conv_gemm`); see :func:`uses_direct`.  Where im2col would run, a 3 x 3
  stride-1 forward over a batch goes by Winograd's F(2 x 2, 3 x 3)
  (:mod:`.conv_winograd`), unless values near the float range could overflow its
  transforms (:func:`_bounded`); so does a 5 x 5 one by F(2 x 2, 5 x 5) on maps
  of at least ``conv_winograd.FIVE_MAP`` outputs.  The GEMM forward goes image by
  image for maps of at least ``IMAGE_GEMM`` outputs (one GEMM as wide as the map),
  with the batch innermost for smaller ones (one GEMM over the whole batch).
- Input gradient: always the batch-inner GEMM path (W.T @ dy, then col2im).

``keep``: a dict of the caller's, passed to the forward and then to both backward
calls of one training step, with x and dy unchanged in between (a layer's); the
batch-inner path keeps its im2col columns there from the forward for the weight
gradient, and dy's batch-inner copy from the weight gradient for the input
gradient, instead of making each twice (~1 ms of the lecture CNN's ~12 ms step).
Each forward and each weight gradient starts it afresh.  None: nothing kept.
"""
import numpy as np

from ..geometry import pair
from ..window_checks import check_arrays, check_channel_bias, check_conv
from .conv_direct import forward_direct, weight_direct
from .conv_gemm import forward_gemm, forward_gemm_images, input_gemm, weight_gemm
from .conv_winograd import forward_winograd, growth, uses_winograd
from .workspace import clear_workspace, scratch

__all__ = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
           "uses_direct", "clear_workspace"]

#: outputs per map from which the GEMM forward runs image by image (AlexNet's maps
#: are 169-3025; the lecture's conv2 has 16, where one batch-wide GEMM wins)
IMAGE_GEMM = 64


def uses_direct(C, kernel, out_hw, stride) -> bool:
    """Whether a convolution with C input channels, this kernel and stride, and
    output size out_hw runs the direct kernels (else im2col + GEMM)."""
    return _use_direct(C, *pair(kernel), *out_hw, pair(stride)[0])


def _use_direct(C, kh, kw, Ho, Wo, sh):
    """Direct loops when K = C*kh*kw is short (a GEMM with a small K does not pay
    for its im2col) or the contiguous run of the output plane is long; im2col +
    GEMM when many channels meet small maps.  Measured on 2 Zen 4 cores (direct
    vs GEMM, forward; docs/performance.md): K 25 / run 576: 0.65 vs 1.7 ms;
    K 200 / run 784: 1.2 vs 2.9; K 144 / run 256: 0.68 vs 0.87; K 288 / run
    256: even; K 576 / run 64: 1.4 vs 0.67; K 800 / run 16 (conv2): 9.2 vs 1.2."""
    run = Ho * Wo if sh == 1 else Wo
    K = C * kh * kw
    return (K <= DIRECT_TAPS and run >= 16) or (run >= 256 and run >= K)


#: a convolution of at most this many taps (C*kh*kw) runs direct on any map of 16
#: outputs or more (:func:`_use_direct`)
DIRECT_TAPS = 128


def conv2d_forward(x, w, b, stride, pad, out, keep=None):
    """out = cross-correlation of x with w, plus b (None: no bias).  Returns out."""
    check_arrays("conv2d_forward", {"x": x, "w": w, "b": b}, {"out": out}, optional={"b"})
    check_conv("conv2d_forward", x.shape, w.shape, stride, pad, out.shape)
    check_channel_bias("conv2d_forward", b, w.shape[0])
    if keep is not None:  # what is kept belongs to another input and gradient
        keep.pop("cols_of", None)
        keep.pop("dyt_of", None)
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    C, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    b = np.zeros(w.shape[0], x.dtype) if b is None else b
    if out.size == 0:
        return out
    Ho, Wo = out.shape[2], out.shape[3]
    if _use_direct(C, kh, kw, Ho, Wo, sh):
        forward_direct(x, w, b, sh, sw, ph, pw, out)
    elif uses_winograd(x.shape[0], kh, kw, sh, sw, Ho, Wo) and _bounded(x, w):
        forward_winograd(x, w, b, ph, pw, out)
    elif Ho * Wo >= IMAGE_GEMM:
        forward_gemm_images(x, w, b, sh, sw, ph, pw, out)
    else:
        forward_gemm(x, w, b, sh, sw, ph, pw, out, keep)
    return out


def _bounded(x, w) -> bool:
    """Whether Winograd's sums stay finite where the direct one does: the input tiles
    grow by up to (B^T's largest row sum)^2, the filters by G's, their products'
    sums over C by A^T's (:func:`.conv_winograd.growth`), with a factor 2 to spare.
    (Two passes over x: ~1 % of the product.)"""
    gx, gw, gout = growth(w.shape[2])
    top = float(np.finfo(x.dtype).max) / 2
    xm, wm = float(max(x.max(), -x.min())), float(max(w.max(), -w.min()))
    return xm * gx < top and wm * gw < top and xm * gx * wm * gw * w.shape[1] * gout < top


def conv2d_backward_weight(x, dy, stride, pad, dw_out, db_out, keep=None):
    """dw_out += dL/dw and db_out += dL/db (None: not wanted), given the layer's
    input x and dy = dL/dout.  Race-free."""
    check_arrays("conv2d_backward_weight", {"x": x, "dy": dy}, {"dw_out": dw_out, "db_out": db_out},
                 optional={"db_out"})
    check_conv("conv2d_backward_weight", x.shape, dw_out.shape, stride, pad, dy.shape)
    check_channel_bias("conv2d_backward_weight", db_out, dw_out.shape[0])
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    dy = np.ascontiguousarray(dy)  # (a strided view: the direct kernel reshapes its images)
    if keep is not None:  # the dy kept belongs to an earlier step
        keep.pop("dyt_of", None)
    db_out = scratch("db_discard", (dw_out.shape[0],), dw_out.dtype) if db_out is None else db_out
    if x.shape[0] == 0 or dw_out.size == 0:
        return
    if _use_direct(*dw_out.shape[1:], *dy.shape[2:], sh):  # C, kh, kw, Ho, Wo, sh
        weight_direct(x, dy, sh, sw, ph, pw, dw_out, db_out)
    else:
        weight_gemm(x, dy, sh, sw, ph, pw, dw_out, db_out, keep)


def conv2d_backward_input(dy, w, stride, pad, dx_out, keep=None):
    """dx_out = dL/dx given dy = dL/dout and w.  Returns dx_out."""
    check_arrays("conv2d_backward_input", {"dy": dy, "w": w}, {"dx_out": dx_out})
    check_conv("conv2d_backward_input", dx_out.shape, w.shape, stride, pad, dy.shape)
    if dx_out.size:
        input_gemm(dy, w, *pair(stride), *pair(pad), dx_out, keep)
    return dx_out
