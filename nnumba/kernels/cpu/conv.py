"""Convolution kernels (cross-correlation with zero padding and stride), NCHW.

Public entry points (one per job; each picks the fastest strategy for the shape):

    conv2d_forward(x, w, b, stride, pad, out)
    conv2d_backward_input(dy, w, stride, pad, dx_out)
    conv2d_backward_weight(x, dy, stride, pad, dw_out, db_out)      (accumulates)
    conv1d_forward / conv1d_backward_input / conv1d_backward_weight (views onto 2-D)
    conv2d_output_shape(H, W, kernel, stride, pad)

Shapes: x (N, C, H, W), w (D, C, kh, kw), b (D,), dy and out (N, D, Ho, Wo) with
Ho = (H + 2*ph - kh) // sh + 1 and Wo likewise.  All arrays C-contiguous, one
float dtype (float32 or float64); callers (the layers) check this.  Kernels
assume valid inputs: Numba does no bounds checking.

Two strategies, chosen per shape by ``_use_direct``:

* direct (few input channels, large maps: the lecture's conv1).  Per image, the
  padded input is copied into ``xs[c, kj, r, j] = xpad[c, r, j*sw + kj]``, kw
  column-shifted planes whose rows have the output's width Wo.  For stride 1 the
  input under tap (c, ki, kj) for the whole flattened output plane p = i*Wo + j
  is then the contiguous run ``xs[off(c, ki, kj) + p]``, so the inner loop is
  one long unit-stride loop over the plane.  It is register-blocked: 4 output
  channels x 5 taps per pass (20 weights held in registers, 5 loads, 4
  read-modify-writes per 20 vector FMAs).  The weight gradient uses the same
  layout as 20 simultaneous dot products.  Parallel over images (forward) or
  over output-channel blocks (weight gradient, race-free).
* im2col + one large GEMM (many channels, small maps: conv2).  The batch is
  moved innermost first (x -> xT (C, H, W, N), 16 x 16 tiles), so that every
  im2col / col2im copy is a run of Wo*N contiguous values however small the
  map; the GEMM columns are ordered (i, j, n).  One GEMM per job:
  forward  outT (D, P*N) = W (D, K) @ colsT (K, P*N),
  weight   dwT (K, D)    = colsT @ dyT.T,
  input    dcolsT (K, P*N) = W.T @ dyT, then folded back (col2im).
  outT and dyT are the batch-inner layouts of out and dy (rows d*P + p), so the
  same two transposes serve every layout change; the forward GEMM adds the
  bias itself, as [W | b] @ [colsT; 1].
  The GEMM is numpy's (np.matmul with out=, called from Python): inside @njit
  np.dot would use SciPy's OpenBLAS, a second thread pool
  (../shared/PERFORMANCE.md).

Scratch memory (im2col columns, GEMM outputs) is kept per thread and reused:
fresh large allocations page-fault on the target VMs.  ``clear_workspace()``
frees it.
"""
import threading

import numpy as np
from numba import get_num_threads, njit, prange

_OPTS = dict(parallel=True, cache=True, fastmath=True)
_SEQ = dict(cache=True, fastmath=True)

# Longest run of the flattened output plane handled per pass of the direct
# forward kernel (keeps the 4 output rows of a block in L1).
_CHUNK = 1024


# --------------------------------------------------------------------------
# small sequential helpers (inlined by LLVM into the parallel kernels)
# --------------------------------------------------------------------------

@njit(cache=True, fastmath=True, inline="always")
def _copy16(d, s):
    """d[0:16] = s[0:16]; all loads before all stores, so LLVM emits a single
    vector load/store pair (a loop would need a runtime alias check)."""
    a0 = s[0]; a1 = s[1]; a2 = s[2]; a3 = s[3]
    a4 = s[4]; a5 = s[5]; a6 = s[6]; a7 = s[7]
    a8 = s[8]; a9 = s[9]; a10 = s[10]; a11 = s[11]
    a12 = s[12]; a13 = s[13]; a14 = s[14]; a15 = s[15]
    d[0] = a0; d[1] = a1; d[2] = a2; d[3] = a3
    d[4] = a4; d[5] = a5; d[6] = a6; d[7] = a7
    d[8] = a8; d[9] = a9; d[10] = a10; d[11] = a11
    d[12] = a12; d[13] = a13; d[14] = a14; d[15] = a15


@njit(**_SEQ)
def _copy_run(d, s, n):
    """d[:n] = s[:n] (short runs: 16-wide blocks, then scalars; long runs: a
    loop LLVM vectorizes behind one runtime alias check)."""
    if n >= 64:
        dd = d[:n]
        ss = s[:n]
        for q in range(n):
            dd[q] = ss[q]
        return
    n16 = n - n % 16
    for q in range(0, n16, 16):
        _copy16(d[q:], s[q:])
    for q in range(n16, n):
        d[q] = s[q]


@njit(**_SEQ)
def _add_run(d, s, n):
    """d[:n] += s[:n] (LLVM vectorises it behind one runtime alias check; the
    16-wide path of _copy_run pays for itself only in inference, col2im is
    training)."""
    dd = d[:n]
    ss = s[:n]
    for q in range(n):
        dd[q] += ss[q]


@njit(**_SEQ)
def _fill_xs(x, n, sw, ph, pw, kw, R, Wo, xs):
    """xs[c, kj, r, j] = xpad[n, c, r, j*sw + kj] for r < R, j < Wo (flat;
    xs holds C*kw*R*Wo elements)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    xn = x[n]
    zero = xs.dtype.type(0)
    for c in range(C):
        for kj in range(kw):
            pbase = (c * kw + kj) * R * Wo
            for r in range(R):
                i = r - ph
                row = pbase + r * Wo
                if i < 0 or i >= H:
                    for j in range(Wo):
                        xs[row + j] = zero
                    continue
                for j in range(Wo):
                    col = j * sw + kj - pw
                    xs[row + j] = xn[c, i, col] if 0 <= col < W else zero


# np.zeros inside a parallel=True kernel becomes a parallel loop of its own,
# one more gufunc to compile; these sequential helpers keep it out.

@njit(**_SEQ)
def _zeros2(A, B, dtype):
    """np.zeros((A, B), dtype), built outside the caller's parfor pass."""
    return np.zeros((A, B), dtype)


@njit(**_SEQ)
def _padded_taps(wf, TP):
    """wf (D, T) copied into zeros (D, TP), TP >= T (the padded taps)."""
    D, T = wf.shape
    wt = np.zeros((D, TP), wf.dtype)
    for d in range(D):
        for t in range(T):
            wt[d, t] = wf[d, t]
    return wt


@njit(**_SEQ)
def _tap_table(C, kh, kw, R, Wo):
    """Offset into xs of tap t = (c*kh + ki)*kw + kj, padded with zeros to a
    multiple of 5 taps (padded taps carry zero weight / are ignored)."""
    T = C * kh * kw
    offs = np.zeros((T + 4) // 5 * 5, np.int64)
    for c in range(C):
        for ki in range(kh):
            for kj in range(kw):
                offs[(c * kh + ki) * kw + kj] = (c * kw + kj) * R * Wo + ki * Wo
    return offs


@njit(**_SEQ)
def _fwd_g4(y, d0, xs, offs, wt, t, xb, ob, pl, first, b):
    """y[d0:d0+4, ob:ob+pl] (+)= sum over taps t..t+4 of wt[d, tap] * xs run."""
    x0 = xs[offs[t] + xb:offs[t] + xb + pl]
    x1 = xs[offs[t + 1] + xb:offs[t + 1] + xb + pl]
    x2 = xs[offs[t + 2] + xb:offs[t + 2] + xb + pl]
    x3 = xs[offs[t + 3] + xb:offs[t + 3] + xb + pl]
    x4 = xs[offs[t + 4] + xb:offs[t + 4] + xb + pl]
    w00 = wt[d0, t]; w01 = wt[d0, t + 1]; w02 = wt[d0, t + 2]; w03 = wt[d0, t + 3]; w04 = wt[d0, t + 4]
    w10 = wt[d0 + 1, t]; w11 = wt[d0 + 1, t + 1]; w12 = wt[d0 + 1, t + 2]; w13 = wt[d0 + 1, t + 3]; w14 = wt[d0 + 1, t + 4]
    w20 = wt[d0 + 2, t]; w21 = wt[d0 + 2, t + 1]; w22 = wt[d0 + 2, t + 2]; w23 = wt[d0 + 2, t + 3]; w24 = wt[d0 + 2, t + 4]
    w30 = wt[d0 + 3, t]; w31 = wt[d0 + 3, t + 1]; w32 = wt[d0 + 3, t + 2]; w33 = wt[d0 + 3, t + 3]; w34 = wt[d0 + 3, t + 4]
    y0 = y[d0, ob:ob + pl]
    y1 = y[d0 + 1, ob:ob + pl]
    y2 = y[d0 + 2, ob:ob + pl]
    y3 = y[d0 + 3, ob:ob + pl]
    if first:
        b0 = b[d0]; b1 = b[d0 + 1]; b2 = b[d0 + 2]; b3 = b[d0 + 3]
        for p in range(pl):
            v0 = x0[p]; v1 = x1[p]; v2 = x2[p]; v3 = x3[p]; v4 = x4[p]
            y0[p] = b0 + w00 * v0 + w01 * v1 + w02 * v2 + w03 * v3 + w04 * v4
            y1[p] = b1 + w10 * v0 + w11 * v1 + w12 * v2 + w13 * v3 + w14 * v4
            y2[p] = b2 + w20 * v0 + w21 * v1 + w22 * v2 + w23 * v3 + w24 * v4
            y3[p] = b3 + w30 * v0 + w31 * v1 + w32 * v2 + w33 * v3 + w34 * v4
    else:
        for p in range(pl):
            v0 = x0[p]; v1 = x1[p]; v2 = x2[p]; v3 = x3[p]; v4 = x4[p]
            y0[p] += w00 * v0 + w01 * v1 + w02 * v2 + w03 * v3 + w04 * v4
            y1[p] += w10 * v0 + w11 * v1 + w12 * v2 + w13 * v3 + w14 * v4
            y2[p] += w20 * v0 + w21 * v1 + w22 * v2 + w23 * v3 + w24 * v4
            y3[p] += w30 * v0 + w31 * v1 + w32 * v2 + w33 * v3 + w34 * v4


@njit(**_SEQ)
def _dw_g4(g, d0, xs, offs, t, xb, ob, pl, acc):
    """acc[d0+k, t+i] += <g[d0+k, ob:ob+pl], xs run of tap t+i>, k<4, i<5:
    20 dot products sharing 4 + 5 loads per step."""
    x0 = xs[offs[t] + xb:offs[t] + xb + pl]
    x1 = xs[offs[t + 1] + xb:offs[t + 1] + xb + pl]
    x2 = xs[offs[t + 2] + xb:offs[t + 2] + xb + pl]
    x3 = xs[offs[t + 3] + xb:offs[t + 3] + xb + pl]
    x4 = xs[offs[t + 4] + xb:offs[t + 4] + xb + pl]
    g0 = g[d0, ob:ob + pl]
    g1 = g[d0 + 1, ob:ob + pl]
    g2 = g[d0 + 2, ob:ob + pl]
    g3 = g[d0 + 3, ob:ob + pl]
    z = acc.dtype.type(0)
    a00 = z; a01 = z; a02 = z; a03 = z; a04 = z
    a10 = z; a11 = z; a12 = z; a13 = z; a14 = z
    a20 = z; a21 = z; a22 = z; a23 = z; a24 = z
    a30 = z; a31 = z; a32 = z; a33 = z; a34 = z
    for p in range(pl):
        v0 = x0[p]; v1 = x1[p]; v2 = x2[p]; v3 = x3[p]; v4 = x4[p]
        u = g0[p]
        a00 += u * v0; a01 += u * v1; a02 += u * v2; a03 += u * v3; a04 += u * v4
        u = g1[p]
        a10 += u * v0; a11 += u * v1; a12 += u * v2; a13 += u * v3; a14 += u * v4
        u = g2[p]
        a20 += u * v0; a21 += u * v1; a22 += u * v2; a23 += u * v3; a24 += u * v4
        u = g3[p]
        a30 += u * v0; a31 += u * v1; a32 += u * v2; a33 += u * v3; a34 += u * v4
    acc[d0, t] += a00; acc[d0, t + 1] += a01; acc[d0, t + 2] += a02; acc[d0, t + 3] += a03; acc[d0, t + 4] += a04
    acc[d0 + 1, t] += a10; acc[d0 + 1, t + 1] += a11; acc[d0 + 1, t + 2] += a12; acc[d0 + 1, t + 3] += a13; acc[d0 + 1, t + 4] += a14
    acc[d0 + 2, t] += a20; acc[d0 + 2, t + 1] += a21; acc[d0 + 2, t + 2] += a22; acc[d0 + 2, t + 3] += a23; acc[d0 + 2, t + 4] += a24
    acc[d0 + 3, t] += a30; acc[d0 + 3, t + 1] += a31; acc[d0 + 3, t + 2] += a32; acc[d0 + 3, t + 3] += a33; acc[d0 + 3, t + 4] += a34


# --------------------------------------------------------------------------
# direct kernels
# --------------------------------------------------------------------------

@njit(**_OPTS)
def _conv_fwd_direct(x, w, b, sh, sw, ph, pw, out):
    """out (N, D, Ho, Wo) = conv(x, w) + b, written fully; D % 4 == 0 (the
    wrapper pads other channel counts).  Parallel over images."""
    N, C = x.shape[0], x.shape[1]
    D, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    Ho, Wo = out.shape[2], out.shape[3]
    R = (Ho - 1) * sh + kh
    offs = _tap_table(C, kh, kw, R, Wo)
    TP = offs.size
    T = C * kh * kw
    wt = _padded_taps(w.reshape(D, T), TP)
    G = TP // 5
    if sh == 1:            # the whole plane is one contiguous run
        nseg = 1
        L = Ho * Wo
    else:                  # one run per output row
        nseg = Ho
        L = Wo
    nch = (L + _CHUNK - 1) // _CHUNK
    step = ((L + nch - 1) // nch + 15) // 16 * 16
    xs_size = C * kw * R * Wo
    for n in prange(N):
        xs = np.empty(xs_size, x.dtype)
        _fill_xs(x, n, sw, ph, pw, kw, R, Wo, xs)
        y = out[n].reshape(D, Ho * Wo)
        for s in range(nseg):
            for p0 in range(0, L, step):
                pl = min(step, L - p0)
                xb = s * sh * Wo + p0
                ob = s * Wo + p0
                for d0 in range(0, D, 4):
                    for g in range(G):
                        _fwd_g4(y, d0, xs, offs, wt, g * 5, xb, ob, pl, g == 0, b)


@njit(**_OPTS)
def _conv_dw_direct(x, dy, sh, sw, ph, pw, nth, dw, db):
    """dw (D, C, kh, kw) += dL/dw, db (D,) += dL/db; D % 4 == 0 (the wrapper
    pads other channel counts).  Parallel over blocks of 4 output channels
    (each thread owns its rows of the accumulator): race-free, and the sum order
    does not depend on the thread count."""
    N, C = x.shape[0], x.shape[1]
    D, kh, kw = dw.shape[0], dw.shape[2], dw.shape[3]
    Ho, Wo = dy.shape[2], dy.shape[3]
    R = (Ho - 1) * sh + kh
    offs = _tap_table(C, kh, kw, R, Wo)
    TP = offs.size
    T = C * kh * kw
    G = TP // 5
    if sh == 1:
        nseg = 1
        L = Ho * Wo
    else:
        nseg = Ho
        L = Wo
    P = Ho * Wo
    nblk = D // 4
    nth = max(1, min(nth, nblk))
    acc = _zeros2(D, TP, dw.dtype)
    dbacc = _zeros2(1, D, dw.dtype)[0]
    xs_size = C * kw * R * Wo
    for th in prange(nth):
        blo = th * nblk // nth
        bhi = (th + 1) * nblk // nth
        xs = np.empty(xs_size, x.dtype)
        for n in range(N):
            _fill_xs(x, n, sw, ph, pw, kw, R, Wo, xs)
            g = dy[n].reshape(D, P)
            for blk in range(blo, bhi):
                d0 = blk * 4
                for s in range(nseg):
                    xb = s * sh * Wo
                    ob = s * Wo
                    for gi in range(G):
                        _dw_g4(g, d0, xs, offs, gi * 5, xb, ob, L, acc)
                for d in range(d0, d0 + 4):
                    gd = g[d]
                    sacc = dbacc.dtype.type(0)
                    for p in range(P):
                        sacc += gd[p]
                    dbacc[d] += sacc
    dwf = dw.reshape(D, T)
    for d in range(D):      # tiny: a second prange would be a second gufunc to compile
        for t in range(T):
            dwf[d, t] += acc[d, t]
        db[d] += dbacc[d]


# --------------------------------------------------------------------------
# im2col / GEMM helpers
# --------------------------------------------------------------------------

# Layout changes between batch-outer arrays (consecutive images C*H*W
# elements apart, often a power of two, so their cache lines share an L1 set)
# and batch-inner ones go through 16 x 16 tiles; the loop that is innermost is
# the one contiguous in the batch-outer array, touching each of its lines once.
# Edge tiles take a plain loop: one fixed-size tile body per function (separate
# edge loops per axis doubled the kernel's compile time for no speed).

@njit(**_SEQ)
def _tr_rc(s, d):
    """d (B, A) = s (A, B).T; s is read along its rows (innermost)."""
    A, B = s.shape
    for i0 in range(0, A, 16):
        i1 = min(A, i0 + 16)
        for j0 in range(0, B, 16):
            j1 = min(B, j0 + 16)
            if i1 - i0 == 16 and j1 - j0 == 16:
                st = s[i0:i1, j0:j1]
                dt = d[j0:j1, i0:i1]
                for i in range(16):
                    for j in range(16):
                        dt[j, i] = st[i, j]
            else:
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        d[j, i] = s[i, j]


@njit(**_SEQ)
def _tr_wc(s, d):
    """d (B, A) = s (A, B).T; d is written along its rows (innermost)."""
    A, B = s.shape
    for i0 in range(0, A, 16):
        i1 = min(A, i0 + 16)
        for j0 in range(0, B, 16):
            j1 = min(B, j0 + 16)
            if i1 - i0 == 16 and j1 - j0 == 16:
                st = s[i0:i1, j0:j1]
                dt = d[j0:j1, i0:i1]
                for j in range(16):
                    for i in range(16):
                        dt[j, i] = st[i, j]
            else:
                for j in range(j0, j1):
                    for i in range(i0, i1):
                        d[j, i] = s[i, j]


@njit(**_OPTS)
def _to_batch_inner(x2, xT2):
    """xT2 (M, N) = x2 (N, M).T.  Parallel over blocks of 64 columns."""
    N, M = x2.shape
    for q in prange((M + 63) // 64):
        j0 = q * 64
        j1 = min(M, j0 + 64)
        _tr_rc(x2[:, j0:j1], xT2[j0:j1, :])


@njit(**_OPTS)
def _to_batch_outer(xT2, x2):
    """x2 (N, M) = xT2 (M, N).T.  Parallel over blocks of 64 rows of xT2."""
    M, N = xT2.shape
    for q in prange((M + 63) // 64):
        i0 = q * 64
        i1 = min(M, i0 + 64)
        _tr_wc(xT2[i0:i1, :], x2[:, i0:i1])


@njit(**_SEQ)
def _pad_rows(xT, ph, pw, xTp):
    """xTp (C, H+2ph, W+2pw, N) = xT (C, H, W, N) zero-padded (rows of N)."""
    C, H, W, N = xT.shape
    Hp, Wp = xTp.shape[1], xTp.shape[2]
    zero = xTp.dtype.type(0)
    for c in range(C):
        for i in range(Hp):
            for j in range(Wp):
                dst = xTp[c, i, j]
                if i < ph or i >= H + ph or j < pw or j >= W + pw:
                    for n in range(N):
                        dst[n] = zero
                else:
                    _copy_run(dst, xT[c, i - ph, j - pw], N)


@njit(**_SEQ)
def _crop_rows(xTp, ph, pw, xT):
    """xT (C, H, W, N) = the interior of xTp (C, H+2ph, W+2pw, N)."""
    C, H, W, N = xT.shape
    for c in range(C):
        for i in range(H):
            for j in range(W):
                _copy_run(xT[c, i, j], xTp[c, i + ph, j + pw], N)


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


# --------------------------------------------------------------------------
# workspace
# --------------------------------------------------------------------------

_tls = threading.local()


def _scratch(name, shape, dtype):
    """A reusable C-contiguous scratch array (contents undefined), per thread."""
    bufs = getattr(_tls, "bufs", None)
    if bufs is None:
        bufs = _tls.bufs = {}
    dtype = np.dtype(dtype)
    size = 1
    for s in shape:
        size *= s
    key = (name, dtype.char)
    a = bufs.get(key)
    if a is None or a.size < size:
        a = np.empty(max(size, 1), dtype)
        bufs[key] = a
    return a[:size].reshape(shape)


def clear_workspace():
    """Free the scratch buffers kept between calls (in this thread)."""
    _tls.bufs = {}


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def _pair(v):
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv2d_output_shape(H, W, kernel, stride=1, pad=0):
    """(Ho, Wo) for an H x W input: floor((H + 2*ph - kh) / sh) + 1."""
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    return (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1


def uses_direct(C, kernel, out_hw, stride):
    """Whether a convolution with C input channels, this kernel and stride, and
    output size out_hw runs the direct kernels (else im2col + GEMM)."""
    kh, kw = _pair(kernel)
    return _use_direct(C, kh, kw, out_hw[0], out_hw[1], _pair(stride)[0])


def _use_direct(C, kh, kw, Ho, Wo, sh):
    """Direct loops when the reduction K = C*kh*kw is short (a GEMM with a small
    K does not pay for its im2col) or the contiguous run of the output plane is
    long; im2col + GEMM when many channels meet small maps.  Measured on 2 Zen 4
    cores (direct vs GEMM, forward): K 25 / run 576: 0.65 vs 1.7 ms; K 200 /
    run 784: 1.2 vs 2.9; K 144 / run 256: 0.68 vs 0.87; K 288 / run 256: even;
    K 576 / run 64: 1.4 vs 0.67; K 800 / run 16 (conv2): 9.2 vs 1.2."""
    run = Ho * Wo if sh == 1 else Wo
    K = C * kh * kw
    return (K <= 128 and run >= 16) or (run >= 256 and run >= K)


def conv2d_forward(x, w, b, stride, pad, out):
    """out (N, D, Ho, Wo) = cross-correlation of x (N, C, H, W) with w
    (D, C, kh, kw), zero padding pad=(ph, pw), stride=(sh, sw), plus b (D,)
    (b may be None).  out is written fully, never read.  Returns out."""
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    N, C, H, W = x.shape
    D, _, kh, kw = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    if b is None:
        b = np.zeros(D, x.dtype)
    if N == 0 or D == 0:
        return out
    if _use_direct(C, kh, kw, Ho, Wo, sh):
        _forward_direct(x, w, b, sh, sw, ph, pw, out)
    else:
        _forward_gemm(x, w, b, sh, sw, ph, pw, out)
    return out


def _forward_direct(x, w, b, sh, sw, ph, pw, out):
    # The direct kernels work on blocks of 4 output channels; other counts run
    # with zero filters added (a copy each way, only then).
    D = w.shape[0]
    if D % 4 == 0:
        _conv_fwd_direct(x, w, b, sh, sw, ph, pw, out)
        return
    D4 = D + 4 - D % 4
    wide = np.empty((out.shape[0], D4) + out.shape[2:], out.dtype)
    _conv_fwd_direct(x, np.pad(w, ((0, D4 - D),) + ((0, 0),) * 3), np.pad(b, (0, D4 - D)),
                     sh, sw, ph, pw, wide)
    out[...] = wide[:, :D]


def _forward_gemm(x, w, b, sh, sw, ph, pw, out):
    N, C, H, W = x.shape
    D, _, kh, kw = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    K, P = C * kh * kw, Ho * Wo
    colsT = _cols_pn(x, kh, kw, sh, sw, ph, pw, Ho, Wo, ones_row=True)
    wb = _scratch("w_bias", (D, K + 1), x.dtype)   # [W | b] @ [cols; 1]: the bias rides in the GEMM
    wb[:, :K] = w.reshape(D, K)
    wb[:, K] = b
    oT = _scratch("gemm_out", (D, P * N), x.dtype)
    np.matmul(wb, colsT, out=oT)
    _to_batch_outer(oT.reshape(D * P, N), out.reshape(N, D * P))


def _cols_pn(x, kh, kw, sh, sw, ph, pw, Ho, Wo, ones_row=False):
    """colsT (C*kh*kw, Ho*Wo*N) of x; ones_row adds a last row of ones."""
    N, C, H, W = x.shape
    xT = _scratch("xT", (C, H, W, N), x.dtype)
    _to_batch_inner(x.reshape(N, C * H * W), xT.reshape(C * H * W, N))
    if ph or pw:
        xTp = _scratch("xTpad", (C, H + 2 * ph, W + 2 * pw, N), x.dtype)
        _pad_rows(xT, ph, pw, xTp)
        xT = xTp
    K = C * kh * kw
    colsT = _scratch("colsT", (K + int(ones_row), Ho * Wo * N), x.dtype)
    _im2col_pn(xT, kh, kw, sh, sw, Ho, Wo, colsT[:K])
    if ones_row:
        colsT[K] = 1
    return colsT


def conv2d_backward_weight(x, dy, stride, pad, dw_out, db_out):
    """dw_out (D, C, kh, kw) += dL/dw and db_out (D,) += dL/db (db_out may be
    None), given the layer input x (N, C, H, W) and dy = dL/dout (N, D, Ho, Wo).
    Accumulates (trainers sum gradients over mini-batches).  Race-free."""
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    N, C, H, W = x.shape
    D, _, kh, kw = dw_out.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    if db_out is None:
        db_out = _scratch("db_discard", (D,), dw_out.dtype)
    if N == 0 or D == 0:
        return
    if _use_direct(C, kh, kw, Ho, Wo, sh):
        _weight_direct(x, dy, sh, sw, ph, pw, dw_out, db_out)
    else:
        _weight_gemm(x, dy, sh, sw, ph, pw, dw_out, db_out)


def _weight_direct(x, dy, sh, sw, ph, pw, dw_out, db_out):
    D = dw_out.shape[0]
    if D % 4 == 0:
        _conv_dw_direct(x, dy, sh, sw, ph, pw, get_num_threads(), dw_out, db_out)
        return
    D4 = D + 4 - D % 4   # zero gradients for the added channels (see _forward_direct)
    dw4 = np.zeros((D4,) + dw_out.shape[1:], dw_out.dtype)
    db4 = np.zeros(D4, db_out.dtype)
    dy4 = np.pad(dy, ((0, 0), (0, D4 - D), (0, 0), (0, 0)))
    _conv_dw_direct(x, dy4, sh, sw, ph, pw, get_num_threads(), dw4, db4)
    dw_out += dw4[:D]
    db_out += db4[:D]


def _weight_gemm(x, dy, sh, sw, ph, pw, dw_out, db_out):
    N = x.shape[0]
    D, C, kh, kw = dw_out.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    P = Ho * Wo
    K = C * kh * kw
    colsT = _cols_pn(x, kh, kw, sh, sw, ph, pw, Ho, Wo)
    dyt = _scratch("dyt", (D, P * N), dy.dtype)
    _to_batch_inner(dy.reshape(N, D * P), dyt.reshape(D * P, N))
    db_out += dyt.sum(axis=1)
    gT = _scratch("gemm_dw", (K, D), dw_out.dtype)
    np.matmul(colsT, dyt.T, out=gT)
    dwf = dw_out.reshape(D, K)
    dwf += gT.T


def conv2d_backward_input(dy, w, stride, pad, dx_out):
    """dx_out (N, C, H, W) = dL/dx given dy = dL/dout (N, D, Ho, Wo) and w
    (D, C, kh, kw).  Written fully (input pixels no window reads get 0)."""
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    N, D, Ho, Wo = dy.shape
    _, C, kh, kw = w.shape
    H, W = dx_out.shape[2], dx_out.shape[3]
    if N == 0:
        return dx_out
    P = Ho * Wo
    K = C * kh * kw
    dyt = _scratch("dyt", (D, P * N), dy.dtype)
    _to_batch_inner(dy.reshape(N, D * P), dyt.reshape(D * P, N))
    dcT = _scratch("dcolsT", (K, P * N), dy.dtype)
    np.matmul(w.reshape(D, K).T, dyt, out=dcT)
    dxT = _scratch("xTpad", (C, H + 2 * ph, W + 2 * pw, N), dy.dtype)
    _col2im_pn(dcT, kh, kw, sh, sw, Ho, Wo, dxT)
    if ph or pw:
        dxTc = _scratch("xT", (C, H, W, N), dy.dtype)
        _crop_rows(dxT, ph, pw, dxTc)
        dxT = dxTc
    M = C * H * W
    _to_batch_outer(dxT.reshape(M, N), dx_out.reshape(N, M))
    return dx_out


# ---- 1-D: (N, C, L) viewed as (N, C, 1, L) --------------------------------

def conv1d_forward(x, w, b, stride, pad, out):
    """out (N, D, Lo) = 1-D cross-correlation of x (N, C, L) with w (D, C, k)
    + b, zero padding pad, stride stride (ints); Lo = (L + 2*pad - k)//stride + 1."""
    return conv2d_forward(x[:, :, None, :], w[:, :, None, :], b, (1, int(stride)),
                          (0, int(pad)), out[:, :, None, :])


def conv1d_backward_input(dy, w, stride, pad, dx_out):
    """dx_out (N, C, L) = dL/dx for conv1d_forward; written fully."""
    conv2d_backward_input(dy[:, :, None, :], w[:, :, None, :], (1, int(stride)),
                          (0, int(pad)), dx_out[:, :, None, :])
    return dx_out


def conv1d_backward_weight(x, dy, stride, pad, dw_out, db_out):
    """dw_out (D, C, k) += dL/dw, db_out (D,) += dL/db for conv1d_forward."""
    conv2d_backward_weight(x[:, :, None, :], dy[:, :, None, :], (1, int(stride)),
                           (0, int(pad)), dw_out[:, :, None, :], db_out)
