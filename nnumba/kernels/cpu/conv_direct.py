"""Direct convolution kernels: forward and weight gradient without im2col, for
few input channels and long output rows (the lecture's conv1).

Per image, the padded input is copied into ``xs[c, kj, r, j] = xpad[c, r, j*sw + kj]``,
kw column-shifted planes whose rows have the output's width Wo.  For stride 1 the
input under tap (c, ki, kj) for the whole flattened output plane p = i*Wo + j is
then the contiguous run ``xs[off(c, ki, kj) + p]``, so the inner loop is one long
unit-stride loop.  It is register-blocked: 4 output channels x 5 taps per pass (20
weights held in registers, 5 loads, 4 read-modify-writes per 20 vector FMAs).  The
weight gradient uses the same layout as 20 simultaneous dot products.  Forward is
parallel over images, the weight gradient over blocks of 4 output channels (each
thread owns its rows of the accumulator: race-free, and the sum order does not
depend on the thread count).  Other output-channel counts run with zero filters
added to a multiple of 4.
"""
import numpy as np
from numba import get_num_threads, njit
from ..cache_stamp import stamp
from .blocks import run_blocks

_SEQ = dict(cache=True, fastmath=True)

# Longest run of the flattened output plane handled per pass of the direct
# forward kernel (keeps the 4 output rows of a block in L1).
_CHUNK = 1024


@njit(**_SEQ)
def _fill_xs(x, n, sw, ph, pw, kw, R, Wo, xs):
    """xs[c, kj, r, j] = xpad[n, c, r, j*sw + kj] for r < R, j < Wo (flat: the first
    C*kw*R*Wo elements of xs)."""
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


def _tap_table(C, kh, kw, R, Wo):
    """Offset into xs of tap t = (c*kh + ki)*kw + kj, padded to a multiple of 5 taps.
    The padded taps carry zero weight and read xs's zero plane (:func:`_new_xs`):
    reading a real tap's input instead made 0 * inf a NaN where the output is inf."""
    c, ki, kj = np.ix_(np.arange(C), np.arange(kh), np.arange(kw))
    offs = np.full((C * kh * kw + 4) // 5 * 5, C * kw * R * Wo, np.int64)
    offs[:C * kh * kw] = ((c * kw + kj) * R * Wo + ki * Wo).ravel()
    return offs


@njit(**_SEQ)
def _new_xs(C, kw, R, Wo, dtype):
    """An image's shifted planes for _fill_xs, and after them the zero plane that
    _tap_table's padded taps read."""
    xs = np.empty((C * kw + 1) * R * Wo, dtype)
    xs[C * kw * R * Wo:] = 0
    return xs


def _runs(Ho, Wo, sh):
    """(runs, run length): the whole output plane is one contiguous run of xs
    for stride 1, else each output row is one."""
    return (1, Ho * Wo) if sh == 1 else (Ho, Wo)


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


@njit(**_SEQ)
def _conv_fwd_image(n, x, offs, wt, b, kh, kw, sh, sw, ph, pw, nseg, L, out):
    """out[n] (D, Ho, Wo) = conv(x[n], w) + b, written fully, from the taps'
    offsets and wt (D, len(offs)), the weights padded to them; D % 4 == 0."""
    D, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    _conv_image(n, x, offs, wt, b, kh, kw, sh, sw, ph, pw, nseg, L, Ho, Wo,
                out[n].reshape(D, Ho * Wo))


@njit(**_SEQ)
def _conv_image(n, x, offs, wt, b, kh, kw, sh, sw, ph, pw, nseg, L, Ho, Wo, y):
    """y (D, Ho*Wo) = conv(x[n], w) + b, written fully (see _conv_fwd_image)."""
    C, D = x.shape[1], y.shape[0]
    R = (Ho - 1) * sh + kh
    nch = (L + _CHUNK - 1) // _CHUNK
    step = ((L + nch - 1) // nch + 15) // 16 * 16
    xs = _new_xs(C, kw, R, Wo, x.dtype)
    _fill_xs(x, n, sw, ph, pw, kw, R, Wo, xs)  # as the weight gradient's
    for s in range(nseg):
        for p0 in range(0, L, step):
            pl = min(step, L - p0)
            xb = s * sh * Wo + p0
            ob = s * Wo + p0
            for d0 in range(0, D, 4):
                for g in range(offs.size // 5):
                    _fwd_g4(y, d0, xs, offs, wt, g * 5, xb, ob, pl, g == 0, b)


@njit(**_SEQ)
def _conv_dw_block(th, nth, x, dy, offs, kh, kw, sh, sw, ph, pw, nseg, L, acc, dbacc):
    """Block th of nth of the output channels' groups of 4: acc (D, len(offs)) +=
    dL/dw at the taps' offsets, dbacc (D,) += dL/db (each block owns its rows of
    the accumulators: race-free, and the sum order does not depend on the
    thread count)."""
    N, C = x.shape[0], x.shape[1]
    D, Ho, Wo = dy.shape[1], dy.shape[2], dy.shape[3]
    R = (Ho - 1) * sh + kh
    xs = _new_xs(C, kw, R, Wo, x.dtype)
    for n in range(N):
        _fill_xs(x, n, sw, ph, pw, kw, R, Wo, xs)
        g = dy[n].reshape(D, Ho * Wo)
        for blk in range(th * (D // 4) // nth, (th + 1) * (D // 4) // nth):
            _dw_channels(blk * 4, g, xs, offs, sh, nseg, L, Wo, acc, dbacc)


@njit(**_SEQ)
def _dw_channels(d0, g, xs, offs, sh, nseg, L, Wo, acc, dbacc):
    """acc[d0:d0+4] and dbacc[d0:d0+4] += one image's terms: g (D, Ho*Wo) its output
    gradient, xs its shifted rows (_fill_xs)."""
    for s in range(nseg):
        for gi in range(offs.size // 5):
            _dw_g4(g, d0, xs, offs, gi * 5, s * sh * Wo, s * Wo, L, acc)
    for d in range(d0, d0 + 4):
        gd = g[d]
        sacc = dbacc.dtype.type(0)
        for p in range(gd.size):
            sacc += gd[p]
        dbacc[d] += sacc


def _tap_weights(w, Ho, Wo, sh):
    """(offs, wt): the taps' offsets into xs and the weights (D, len(offs)) padded
    to them, for output maps of Ho x Wo."""
    D, C, kh, kw = w.shape
    offs = _tap_table(C, kh, kw, (Ho - 1) * sh + kh, Wo)
    wt = np.zeros((D, offs.size), w.dtype)
    wt[:, :C * kh * kw] = w.reshape(D, -1)
    return offs, wt


def _conv_fwd_direct(x, w, b, sh, sw, ph, pw, out):
    kh, kw = w.shape[2], w.shape[3]
    Ho, Wo = out.shape[2], out.shape[3]
    run_blocks(_conv_fwd_image, x.shape[0], x, *_tap_weights(w, Ho, Wo, sh), b, kh, kw, sh, sw,
               ph, pw, *_runs(Ho, Wo, sh), out)


def _dw_direct(body, x, data, Ho, Wo, sh, sw, ph, pw, dw, db):
    """dw (D, C, kh, kw) += dL/dw, db (D,) += dL/db; D % 4 == 0, in parallel
    over blocks of output channels: ``body(th, nth, x, *data, offs, kh, kw, sh, sw,
    ph, pw, nseg, L, acc, dbacc)`` is the block of thread th of nth, ``data`` what
    gives it the output gradient."""
    D, C, kh, kw = dw.shape
    offs = _tap_table(C, kh, kw, (Ho - 1) * sh + kh, Wo)
    acc = np.zeros((D, offs.size), dw.dtype)
    dbacc = np.zeros(D, dw.dtype)
    nth = max(1, min(get_num_threads(), D // 4))
    run_blocks(body, nth, nth, x, *data, offs, kh, kw, sh, sw, ph, pw, *_runs(Ho, Wo, sh),
               acc, dbacc)
    dw += acc[:, :C * kh * kw].reshape(dw.shape)
    db += dbacc


def forward_direct(x, w, b, sh, sw, ph, pw, out):
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


def weight_direct(x, dy, sh, sw, ph, pw, dw_out, db_out):
    D = dw_out.shape[0]
    if D % 4 == 0:
        _dw_direct(_conv_dw_block, x, (dy,), dy.shape[2], dy.shape[3], sh, sw, ph, pw, dw_out,
                   db_out)
        return
    D4 = D + 4 - D % 4   # zero gradients for the added channels (see forward_direct)
    dw4 = np.zeros((D4,) + dw_out.shape[1:], dw_out.dtype)
    db4 = np.zeros(D4, db_out.dtype)
    dy4 = np.pad(dy, ((0, 0), (0, D4 - D), (0, 0), (0, 0)))
    _dw_direct(_conv_dw_block, x, (dy4,), dy.shape[2], dy.shape[3], sh, sw, ph, pw, dw4, db4)
    dw_out += dw4[:D]
    db_out += db4[:D]


stamp(globals())  # the disk cache follows every kernel source
