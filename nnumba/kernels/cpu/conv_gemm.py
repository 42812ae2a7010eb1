"""The im2col + GEMM convolution paths: the input gradient of every convolution,
and the forward and weight gradient where the direct kernels would be slow.

Batch inner, for small maps (the lecture's conv2, 4 x 4 outputs): the batch is
moved innermost first (x -> xT (C, H, W, N), see :mod:`.layout`), so that every
im2col / col2im copy is a run of Wo*N contiguous values; the GEMM columns are
ordered (i, j, n).  One GEMM per job:

    forward  outT (D, P*N)   = W (D, K) @ colsT (K, P*N) + b
    weight   dwT (K, D)      = colsT @ dyT.T,   db = row sums of dyT
    input    dcolsT (K, P*N) = W.T @ dyT, then folded back (col2im)

with K = C*kh*kw and P = Ho*Wo; outT and dyT are the batch-inner layouts of out
and dy.  Image by image, for large maps (AlexNet's, and a batch of one):
forward out[n] (D, P) = W @ cols_n + b, cols_n the image's own im2col,
so nothing is transposed and a stride-4 window is no run of single values.
The forward GEMMs add W @ cols to outputs filled with the bias.  The GEMMs are
BLAS's (:mod:`.blas`).
"""
import numpy as np
from numba import get_num_threads, njit

from .layout import _add_run, _copy_run, _crop_rows, _pad_rows, to_batch_inner, to_batch_outer
from .blas import address, gemm, gemm_in_thread
from .blocks import run_blocks
from .workspace import scratch
from ..cache_stamp import stamp

_SEQ = dict(cache=True, fastmath=True)


@njit(**_SEQ)
def _im2col_pn(t, xT, kh, kw, sh, sw, Ho, Wo, colsT):
    """Row t = (c, ki, kj) of colsT (C*kh*kw, Ho*Wo*N): column (i*Wo + j)*N + n
    holds xT[c, i*sh + ki, j*sw + kj, n].  With the batch innermost every copy
    is a run of N (of Wo*N for sw == 1) contiguous values, whatever the map
    size.  Run for every t in parallel (each writes its own row)."""
    N = xT.shape[3]
    span = Wo if sw == 1 else 1   # output columns per contiguous run
    run = span * N
    c = t // (kh * kw)
    ki = (t // kw) % kh
    kj = t % kw
    row = colsT[t]
    for i in range(Ho):
        src = xT[c, i * sh + ki]
        for j in range(0, Wo, span):
            s0 = j * sw + kj
            o = (i * Wo + j) * N
            _copy_run(row[o:o + run], src[s0:s0 + span].reshape(run), run)


@njit(**_SEQ)
def _col2im_pn(c, dxT, kh, kw, sh, sw, Ho, Wo, dcolsT):
    """Channel c of dxT (C, Hp, Wp, N) = fold of dcolsT (C*kh*kw, Ho*Wo*N),
    written fully (the adjoint of _im2col_pn; its argument types, so that both
    share one compiled parallel loop).  Run for every c in parallel: race-free."""
    C, Hp, Wp, N = dxT.shape
    zero = dxT.dtype.type(0)
    span = Wo if sw == 1 else 1   # output columns per contiguous run
    run = span * N
    plane = dxT[c].reshape(Hp * Wp * N)
    for q in range(plane.size):
        plane[q] = zero
    for ki in range(kh):
        for kj in range(kw):
            row = dcolsT[(c * kh + ki) * kw + kj]
            for i in range(Ho):
                dst = dxT[c, i * sh + ki]
                for j in range(0, Wo, span):
                    s0 = j * sw + kj
                    o = (i * Wo + j) * N
                    _add_run(dst[s0:s0 + span].reshape(run), row[o:o + run], run)


def _array(keep, name, shape, dtype):
    """An array of the caller's ``keep`` (see :mod:`.conv`), made again where its shape
    or dtype changes; this thread's scratch without one."""
    if keep is None:
        return scratch(name, shape, dtype)
    a = keep.get(name)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = keep[name] = np.empty(shape, dtype)
    return a


@njit(**_SEQ)
def _bias_rows(b, out):
    """Row d of out (D, P) = b[d], for a GEMM that then adds W @ cols (beta 1): the
    bias needs no copy of W with b as an extra column (that copy, 10 MB for AlexNet's
    convolutions, cost ~1 ms of a 21 ms pass at batch 1)."""
    for d in range(out.shape[0]):
        row = out[d]
        for p in range(row.size):
            row[p] = b[d]


def forward_gemm(x, w, b, sh, sw, ph, pw, out, keep=None):
    N = x.shape[0]
    D, C, kh, kw = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    K, P = C * kh * kw, Ho * Wo
    colsT = _cols_pn(x, kh, kw, sh, sw, ph, pw, Ho, Wo, keep=keep)
    oT = scratch("gemm_out", (D, P * N), x.dtype)
    _bias_rows(b, oT)
    gemm(w.reshape(D, K), colsT, oT, accumulate=True)
    to_batch_outer(oT.reshape(D * P, N), out.reshape(N, D * P))


@njit(**_SEQ)
def _phases(x, n, sh, sw, ph, pw, xq):
    """xq[c, a, b, r, q] = xpad[n, c, r*sh + a, q*sw + b] (0 outside the image) for the
    phases a < min(sh, kh), b < min(sw, kw) the taps read: image n padded and split by
    stride phase, so that each tap's columns are runs of Wo contiguous values
    (:func:`_tap_columns`; gathering every sw-th value per output took 3-4x longer)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    Hq, Wq = xq.shape[3], xq.shape[4]
    zero = xq.dtype.type(0)
    for c in range(C):
        for a in range(xq.shape[1]):
            for b in range(xq.shape[2]):
                q_lo = min(Wq, max(0, (pw - b + sw - 1) // sw))  # first q with a column >= 0
                q_hi = max(q_lo, min(Wq, (W - 1 + pw - b) // sw + 1))  # past the last < W
                for r in range(Hq):
                    row = xq[c, a, b, r]
                    i = r * sh + a - ph
                    inside = 0 <= i < H
                    lo, hi = (q_lo, q_hi) if inside else (Wq, Wq)  # outside: all zeros
                    for q in range(lo):
                        row[q] = zero
                    if inside:
                        src = x[n, c, i]
                        for q in range(q_lo, q_hi):
                            row[q] = src[q * sw + b - pw]
                    for q in range(hi, Wq):
                        row[q] = zero


@njit(**_SEQ)
def _tap_columns(t, xq, kh, kw, sh, sw, Ho, Wo, cols):
    """Row t = (c, ki, kj) of an image's im2col cols (C*kh*kw, Ho*Wo): column i*Wo + j
    holds xpad[c, i*sh + ki, j*sw + kj], in xq (:func:`_phases`) phase (ki % sh,
    kj % sw) at row i + ki // sh, column j + kj // sw: one contiguous run per row."""
    c = t // (kh * kw)
    ki = (t // kw) % kh
    kj = t % kw
    plane = xq[c, ki % sh, kj % sw]
    di, dj = ki // sh, kj // sw
    row = cols[t]
    for i in range(Ho):
        src = plane[i + di][dj:dj + Wo]
        dst = row[i * Wo:(i + 1) * Wo]
        for j in range(Wo):
            dst[j] = src[j]


def _phase_shape(C, kh, kw, sh, sw, Ho, Wo) -> tuple:
    """The shape of :func:`_phases`' xq for one image."""
    return (C, min(sh, kh), min(sw, kw), Ho + (kh - 1) // sh, Wo + (kw - 1) // sw)


@njit(**_SEQ)
def _images_in_thread(t, fn, x, w, b, kh, kw, sh, sw, ph, pw, Ho, Wo, xq, cols, out):
    """out[n] (D, P) = w @ cols_n + b for images t, t + T, ..., T = len(cols), into
    thread t's own xq[t] and cols[t] (K, P): run for every t in parallel, no data
    crosses between cores."""
    T, K = cols.shape[0], cols.shape[1]
    for n in range(t, x.shape[0], T):
        _phases(x, n, sh, sw, ph, pw, xq[t])
        for tap in range(K):
            _tap_columns(tap, xq[t], kh, kw, sh, sw, Ho, Wo, cols[t])
        _bias_rows(b, out[n])
        gemm_in_thread(fn, w, cols[t], out[n], 1.0)


def forward_gemm_images(x, w, b, sh, sw, ph, pw, out):
    """out[n] (D, P) = W @ cols_n + b, image by image: one image per thread when the
    batch has an image for each (measured 10-35 % faster on AlexNet's layers at batch
    16 than splitting each GEMM), else each GEMM split."""
    N = x.shape[0]
    D, C, kh, kw = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    K, P = C * kh * kw, Ho * Wo
    w2 = w.reshape(D, K)
    phases = _phase_shape(C, kh, kw, sh, sw, Ho, Wo)
    fn, threads = address(x.dtype), get_num_threads()
    if fn is not None and N >= threads > 1:
        xq = scratch("phases", (threads,) + phases, x.dtype)
        cols = scratch("cols_images", (threads, K, P), x.dtype)
        run_blocks(_images_in_thread, threads, fn, x, w2, b, kh, kw, sh, sw, ph, pw, Ho, Wo,
                   xq, cols, out.reshape(N, D, P))
        return
    xq = scratch("phases", phases, x.dtype)
    cols = scratch("cols_image", (K, P), x.dtype)
    for n in range(N):
        _phases(x, n, sh, sw, ph, pw, xq)
        run_blocks(_tap_columns, K, xq, kh, kw, sh, sw, Ho, Wo, cols)
        image = out[n].reshape(D, P)
        _bias_rows(b, image)
        gemm(w2, cols, image, accumulate=True)


def _cols_pn(x, kh, kw, sh, sw, ph, pw, Ho, Wo, keep=None):
    """colsT (C*kh*kw, Ho*Wo*N) of x.  With ``keep``
    they are made there, for the weight gradient of the same x (:func:`weight_gemm`)."""
    N, C, H, W = x.shape
    xT = scratch("xT", (C, H, W, N), x.dtype)
    to_batch_inner(x.reshape(N, C * H * W), xT.reshape(C * H * W, N))
    if ph or pw:
        xTp = scratch("xTpad", (C, H + 2 * ph, W + 2 * pw, N), x.dtype)
        _pad_rows(xT, ph, pw, xTp.reshape(C, H + 2 * ph, 1, W + 2 * pw, N))
        xT = xTp
    K = C * kh * kw
    colsT = _array(keep, "colsT", (K, Ho * Wo * N), x.dtype)
    run_blocks(_im2col_pn, K, xT, kh, kw, sh, sw, Ho, Wo, colsT)
    if keep is not None:
        keep["cols_of"] = _input_key(x, (kh, kw, sh, sw, ph, pw))
    return colsT


def _input_key(a, geometry=()) -> tuple:
    """What identifies an array a kernel made something of (the caller keeps it
    unchanged in between: see :mod:`.conv`)."""
    return (a.ctypes.data, a.shape, a.strides, a.dtype.str) + tuple(geometry)


def weight_gemm(x, dy, sh, sw, ph, pw, dw_out, db_out, keep=None):
    N = x.shape[0]
    D, C, kh, kw = dw_out.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    P, K = Ho * Wo, C * kh * kw
    if keep is not None and keep.get("cols_of") == _input_key(x, (kh, kw, sh, sw, ph, pw)):
        colsT = keep["colsT"]  # the forward's, of this x
    else:
        colsT = _cols_pn(x, kh, kw, sh, sw, ph, pw, Ho, Wo)
    dyt = _array(keep, "dyt", (D, P * N), dy.dtype)
    to_batch_inner(dy.reshape(N, D * P), dyt.reshape(D * P, N))
    if keep is not None:  # for the input gradient of this dy
        keep["dyt_of"] = _input_key(dy)
    db_out += dyt.sum(axis=1)
    gemm(dyt, colsT.T, dw_out.reshape(D, K), accumulate=True)   # dW (D, K) += dyT @ colsT.T


def input_gemm(dy, w, sh, sw, ph, pw, dx_out, keep=None):
    """dx_out (N, C, H, W) = dL/dx given dy = dL/dout (N, D, Ho, Wo) and w
    (D, C, kh, kw), written fully (input pixels no window reads get 0)."""
    N, D, Ho, Wo = dy.shape
    _, C, kh, kw = w.shape
    H, W = dx_out.shape[2], dx_out.shape[3]
    P, K, M = Ho * Wo, C * kh * kw, C * H * W
    if keep is not None and keep.get("dyt_of") == _input_key(dy):
        dyt = keep["dyt"]  # the weight gradient's, of this dy
    else:
        dyt = scratch("dyt", (D, P * N), dy.dtype)
        to_batch_inner(dy.reshape(N, D * P), dyt.reshape(D * P, N))
    dcT = scratch("dcolsT", (K, P * N), dy.dtype)
    gemm(w.reshape(D, K).T, dyt, dcT)
    dxT = scratch("xTpad", (C, H + 2 * ph, W + 2 * pw, N), dy.dtype)
    run_blocks(_col2im_pn, C, dxT, kh, kw, sh, sw, Ho, Wo, dcT)
    if ph or pw:
        dxTc = scratch("xT", (C, H, W, N), dy.dtype)
        _crop_rows(dxT, ph, pw, dxTc)
        dxT = dxTc
    to_batch_outer(dxT.reshape(M, N), dx_out.reshape(N, M))


stamp(globals())  # the disk cache follows every kernel source
