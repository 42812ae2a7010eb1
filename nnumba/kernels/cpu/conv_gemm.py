"""The im2col + GEMM convolution path, for many input channels and small maps (the
lecture's conv2), and the input gradient of every convolution.

The batch is moved innermost first (x -> xT (C, H, W, N), see :mod:`.layout`), so
that every im2col / col2im copy is a run of Wo*N contiguous values; the GEMM
columns are ordered (i, j, n).  One GEMM per job:

    forward  outT (D, P*N)   = [W | b] (D, K+1) @ [colsT; 1] (K+1, P*N)
    weight   dwT (K, D)      = colsT @ dyT.T,   db = row sums of dyT
    input    dcolsT (K, P*N) = W.T @ dyT, then folded back (col2im)

with K = C*kh*kw and P = Ho*Wo; outT and dyT are the batch-inner layouts of out
and dy.  The GEMM is numpy's (np.matmul with out=, called from Python).
"""
import numpy as np
from numba import njit, prange

from .layout import _add_run, _copy_run, _crop_rows, _pad_rows, _to_batch_inner, _to_batch_outer
from .workspace import scratch

_OPTS = dict(parallel=True, cache=True, fastmath=True)


@njit(**_OPTS)
def _im2col_pn(xT, kh, kw, sh, sw, Ho, Wo, colsT):
    """colsT (C*kh*kw, Ho*Wo*N): row t = (c, ki, kj), column (i*Wo + j)*N + n
    holds xT[c, i*sh + ki, j*sw + kj, n].  With the batch innermost every copy
    is a run of N (of Wo*N for sw == 1) contiguous values, whatever the map
    size.  Parallel over taps (each writes its own row)."""
    C, Hp, Wp, N = xT.shape
    T = C * kh * kw
    span = Wo if sw == 1 else 1   # output columns per contiguous run
    run = span * N
    for t in prange(T):
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


@njit(**_OPTS)
def _col2im_pn(dcolsT, kh, kw, sh, sw, Ho, Wo, dxT):
    """dxT (C, Hp, Wp, N) = fold of dcolsT (C*kh*kw, Ho*Wo*N), written fully
    (the adjoint of _im2col_pn).  Parallel over channels: race-free."""
    C, Hp, Wp, N = dxT.shape
    zero = dxT.dtype.type(0)
    span = Wo if sw == 1 else 1   # output columns per contiguous run
    run = span * N
    for c in prange(C):
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


def forward_gemm(x, w, b, sh, sw, ph, pw, out):
    N, C, H, W = x.shape
    D, _, kh, kw = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    K, P = C * kh * kw, Ho * Wo
    colsT = _cols_pn(x, kh, kw, sh, sw, ph, pw, Ho, Wo, ones_row=True)
    wb = scratch("w_bias", (D, K + 1), x.dtype)   # [W | b] @ [cols; 1]: the bias rides in the GEMM
    wb[:, :K] = w.reshape(D, K)
    wb[:, K] = b
    oT = scratch("gemm_out", (D, P * N), x.dtype)
    np.matmul(wb, colsT, out=oT)
    _to_batch_outer(oT.reshape(D * P, N), out.reshape(N, D * P))


def _cols_pn(x, kh, kw, sh, sw, ph, pw, Ho, Wo, ones_row=False):
    """colsT (C*kh*kw, Ho*Wo*N) of x; ones_row adds a last row of ones."""
    N, C, H, W = x.shape
    xT = scratch("xT", (C, H, W, N), x.dtype)
    _to_batch_inner(x.reshape(N, C * H * W), xT.reshape(C * H * W, N))
    if ph or pw:
        xTp = scratch("xTpad", (C, H + 2 * ph, W + 2 * pw, N), x.dtype)
        _pad_rows(xT, ph, pw, xTp)
        xT = xTp
    K = C * kh * kw
    colsT = scratch("colsT", (K + int(ones_row), Ho * Wo * N), x.dtype)
    _im2col_pn(xT, kh, kw, sh, sw, Ho, Wo, colsT[:K])
    if ones_row:
        colsT[K] = 1
    return colsT


def weight_gemm(x, dy, sh, sw, ph, pw, dw_out, db_out):
    N = x.shape[0]
    D, C, kh, kw = dw_out.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    P = Ho * Wo
    K = C * kh * kw
    colsT = _cols_pn(x, kh, kw, sh, sw, ph, pw, Ho, Wo)
    dyt = scratch("dyt", (D, P * N), dy.dtype)
    _to_batch_inner(dy.reshape(N, D * P), dyt.reshape(D * P, N))
    db_out += dyt.sum(axis=1)
    gT = scratch("gemm_dw", (K, D), dw_out.dtype)
    np.matmul(colsT, dyt.T, out=gT)
    dwf = dw_out.reshape(D, K)
    dwf += gT.T


def input_gemm(dy, w, sh, sw, ph, pw, dx_out):
    """dx_out (N, C, H, W) = dL/dx given dy = dL/dout (N, D, Ho, Wo) and w
    (D, C, kh, kw), written fully (input pixels no window reads get 0)."""
    N, D, Ho, Wo = dy.shape
    _, C, kh, kw = w.shape
    H, W = dx_out.shape[2], dx_out.shape[3]
    P = Ho * Wo
    K = C * kh * kw
    dyt = scratch("dyt", (D, P * N), dy.dtype)
    _to_batch_inner(dy.reshape(N, D * P), dyt.reshape(D * P, N))
    dcT = scratch("dcolsT", (K, P * N), dy.dtype)
    np.matmul(w.reshape(D, K).T, dyt, out=dcT)
    dxT = scratch("xTpad", (C, H + 2 * ph, W + 2 * pw, N), dy.dtype)
    _col2im_pn(dcT, kh, kw, sh, sw, Ho, Wo, dxT)
    if ph or pw:
        dxTc = scratch("xT", (C, H, W, N), dy.dtype)
        _crop_rows(dxT, ph, pw, dxTc)
        dxT = dxTc
    M = C * H * W
    _to_batch_outer(dxT.reshape(M, N), dx_out.reshape(N, M))
