"""Pooling kernels on NCHW arrays (no padding), plus fused ReLU + max-pool.

Public entry points:

    maxpool2d_forward(x, kernel, stride, out, argmax_out)
    maxpool2d_backward(dy, argmax, dx_out)
    relu_maxpool2d_forward(x, kernel, stride, out, argmax_out)
    relu_maxpool2d_backward(dy, argmax, out, dx_out)
    avgpool2d_forward(x, kernel, stride, out)
    avgpool2d_backward(dy, kernel, stride, dx_out)

A 1-D pool is the 2-D one on a height-1 view (N, C, 1, L).

Shapes: x and dx_out (N, C, H, W); out, dy and argmax (N, C, Ho, Wo) with
Ho = (H - kh) // sh + 1, Wo = (W - kw) // sw + 1
(:func:`nnumba.kernels.geometry.pool2d_output_shape`; trailing rows and
columns that fill no window are never read and get zero gradient).  All
arrays C-contiguous; x, out, dy, dx one float dtype (float32 or float64);
argmax int32 (the fast path; the kernels are compiled for int32 only) or int64
(converted through an int32 copy).  Callers (the layers) check this.

argmax holds, per output, the flat index i*W + j of the chosen input pixel
within its (H, W) plane (as PyTorch's ``return_indices``).  Ties: the FIRST
maximum in row-major window order wins (strict ``>`` while scanning).  NaN
propagates as in PyTorch: a window holding one gives NaN (the last NaN's index),
and the fused ReLU keeps it, as relu(NaN) is NaN (it gave 0: fuzz round 41).

Backward kernels write dx fully (zero where no output chose a pixel) and
accumulate when windows overlap (stride < kernel).  They run in parallel over
(n, c) planes, each plane owned by one thread: race-free.  Average pooling
computes the windows with the formulas shared with the GPU
(:mod:`nnumba.kernels.formulas`).

The fused ReLU + max-pool is exactly relu followed by max-pool:
relu(max(window)) = max(relu(window)); when the window max is <= 0 every relu
value is 0 and the first window position is the argmax; the backward passes
the gradient except where the pooled output is <= 0 (relu'(0) = 0; at NaN it passes,
as PyTorch's threshold_backward).
"""
import numpy as np
from numba import njit

from .. import formulas
from ..geometry import pair
from ..cache_stamp import stamp
from ..window_checks import check_argmax, check_arrays, check_pool, check_unpool
from .blocks import run_blocks

# The max-pools propagate NaN, as PyTorch's: fastmath without its no-NaN assumption,
# under which `v != v` is false.
_MAX = dict(cache=True, fastmath=formulas.NAN_EXACT)


@njit(**_MAX)
def _max_row(xp, W, Wo, kh, kw, sh, sw, oi, m, idx):
    """m[oj], idx[oj] = max and first argmax (row-major) of window (oi, oj).  The scan
    compares with '>' alone and notes a NaN apart; a window holding one is scanned
    again with NaN winning (_nan_window): '(v > best) | (v != v)' in the select
    kept AlexNet's 3 x 3 stride-2 pool from vectorising, 3.2x slower (808 vs 255 us
    a 64 x 55 x 55 plane set, one thread)."""
    for oj in range(Wo):
        base = oi * sh * W + oj * sw
        best = xp[base]
        bi = base
        nan = False
        for ki in range(kh):
            r = base + ki * W
            for kj in range(kw):
                v = xp[r + kj]
                gt = v > best  # branch-free: select, not a jump
                nan = nan | (v != v)
                bi = r + kj if gt else bi
                best = v if gt else best
        if nan:
            best, bi = _nan_window(xp, W, kh, kw, base)
        m[oj] = best
        idx[oj] = bi


@njit(**_MAX)
def _nan_window(xp, W, kh, kw, base):
    """(max, argmax) of the window at base, a NaN winning (the last one's index)."""
    best = xp[base]
    bi = base
    for ki in range(kh):
        r = base + ki * W
        for kj in range(kw):
            v = xp[r + kj]
            if (v > best) | (v != v):
                best = v
                bi = r + kj
    return best, bi


@njit(**_MAX)
def _maxpool_generic_block(blk, pb, x2, H, W, kh, kw, sh, sw, relu, out2, am2):
    """Planes blk*pb..: x2 (planes, H*W) -> out2, am2 (planes, Ho*Wo)."""
    Ho = (H - kh) // sh + 1
    Wo = (W - kw) // sw + 1
    zero = out2.dtype.type(0)
    for q in range(blk * pb, min(x2.shape[0], blk * pb + pb)):
        xp = x2[q]
        op = out2[q]
        ap = am2[q]
        for oi in range(Ho):
            o = op[oi * Wo:(oi + 1) * Wo]
            a = ap[oi * Wo:(oi + 1) * Wo]
            if kh == 3 and kw == 3:     # e.g. overlapping 3 x 3 pools: fixed trip counts
                _max_row(xp, W, Wo, 3, 3, sh, sw, oi, o, a)
            else:
                _max_row(xp, W, Wo, kh, kw, sh, sw, oi, o, a)
            if relu:
                for oj in range(Wo):
                    if o[oj] <= zero:  # (NaN stays NaN, as relu(NaN))
                        o[oj] = zero
                        a[oj] = oi * sh * W + oj * sw


@njit(**_MAX)
def _hmax3(xs, n, hm, hk):
    """hm[f], hk[f] = first maximum of xs[3f : 3f+3] and its offset."""
    for f in range(n):
        a = xs[3 * f]
        b = xs[3 * f + 1]
        c = xs[3 * f + 2]
        best = a
        bk = 0
        if (b > best) | (b != b):
            best = b
            bk = 1
        if (c > best) | (c != c):
            best = c
            bk = 2
        hm[f] = best
        hk[f] = bk


@njit(**_MAX)
def _hmax2(xs, n, hm, hk):
    """hm[f], hk[f] = first maximum of xs[2f : 2f+2] and its offset."""
    for f in range(n):
        a = xs[2 * f]
        b = xs[2 * f + 1]
        gt = (b > a) | (b != b)
        hm[f] = b if gt else a
        hk[f] = 1 if gt else 0


@njit(**_MAX)
def _vmax3(hm, hk, q, H, W, Wo, kw, sh, Ho, relu, op, ap):
    """Pass 2, kh = 3, for plane q of a block: the first maximum over the three
    row maxima (fixed-count code on row slices)."""
    zero = op.dtype.type(0)
    for oi in range(Ho):
        r0 = (q * H + oi * sh) * Wo
        base = oi * sh * W
        o = op[oi * Wo:oi * Wo + Wo]
        a = ap[oi * Wo:oi * Wo + Wo]
        h0 = hm[r0:r0 + Wo]
        k0 = hk[r0:r0 + Wo]
        h1 = hm[r0 + Wo:r0 + 2 * Wo]
        k1 = hk[r0 + Wo:r0 + 2 * Wo]
        h2 = hm[r0 + 2 * Wo:r0 + 3 * Wo]
        k2 = hk[r0 + 2 * Wo:r0 + 3 * Wo]
        for oj in range(Wo):
            best = h0[oj]
            idx = base + oj * kw + k0[oj]
            v = h1[oj]
            if (v > best) | (v != v):
                best = v
                idx = base + W + oj * kw + k1[oj]
            v = h2[oj]
            if (v > best) | (v != v):
                best = v
                idx = base + 2 * W + oj * kw + k2[oj]
            if relu and best <= zero:
                best = zero
                idx = base + oj * kw
            o[oj] = best
            a[oj] = idx


@njit(**_MAX)
def _vmax_flat(hm, hk, G, Ho, W, Wo, kh, kw, sh, relu, of, af):
    """Pass 2 over a whole block of planes when H == Ho*sh (output row g of the
    block reads hm rows g*sh + ki): one flat loop, any kh."""
    zero = of.dtype.type(0)
    for g in range(G):
        oi = g % Ho
        r0 = g * sh * Wo
        base = oi * sh * W
        for oj in range(Wo):
            best = hm[r0 + oj]
            bi = 0
            for ki in range(1, kh):
                v = hm[r0 + ki * Wo + oj]
                if (v > best) | (v != v):
                    best = v
                    bi = ki
            idx = base + bi * W + oj * kw + hk[r0 + bi * Wo + oj]
            if relu and best <= zero:
                best = zero
                idx = base + oj * kw
            of[g * Wo + oj] = best
            af[g * Wo + oj] = idx


_BLOCK = 4096   # input elements per parallel block of the max-pool


def _per_block(plane_size):
    """Planes per parallel block: small planes go in groups (fewer calls)."""
    return max(1, _BLOCK // plane_size)


@njit(**_MAX)
def _maxpool_rows_block(blk, pb, xf, nplanes, H, W, kh, kw, sh, relu, of, af):
    """Block blk of pb planes, for windows that tile each input row exactly (sw == kw
    in (2, 3), W == Wo*kw) with kh == 3 or rows that tile H exactly (H == Ho*sh):
    the lecture's pools.  Pass 1, over all rows of the block as one flat loop
    (vectorised, stride-kw loads): the first maximum of each row segment.  Pass 2
    (_vmax*): the first of these maxima down the kh rows.  Strict '>' in both
    passes: (ki, kj) is the row-major first maximum.  Flat arrays (xf: nplanes
    planes of H*W; of, af: of Ho*Wo): slices of them compile to less code than
    reshaped 2-D rows."""
    Ho = (H - kh) // sh + 1
    Wo = W // kw
    P = Ho * Wo
    q0 = blk * pb
    q1 = min(nplanes, q0 + pb)
    nf = (q1 - q0) * H * Wo
    hm = np.empty(nf, xf.dtype)
    hk = np.empty(nf, np.int32)
    xs = xf[q0 * H * W:q1 * H * W]
    if kw == 3:
        _hmax3(xs, nf, hm, hk)
    else:
        _hmax2(xs, nf, hm, hk)
    if kh == 3 and (Wo >= 8 or H != Ho * sh):   # fixed-count code, per plane
        for q in range(q1 - q0):
            o = (q0 + q) * P
            _vmax3(hm, hk, q, H, W, Wo, kw, sh, Ho, relu, of[o:o + P], af[o:o + P])
    else:                                       # H == Ho * sh: the block as one loop
        _vmax_flat(hm, hk, (q1 - q0) * Ho, Ho, W, Wo, kh, kw, sh, relu,
                   of[q0 * P:q1 * P], af[q0 * P:q1 * P])


def rows_pool(H, W, kh, kw, sh, sw) -> bool:
    """Whether _maxpool_rows_block takes this pool (the lecture's pools: each
    specialisation the two-pass kernel has costs compile time); any other window
    shape goes to the generic one."""
    return sw == kw and kw in (2, 3) and W % kw == 0 and \
        (kh == 3 or (H - kh) // sh * sh + sh == H)


@njit(**_MAX)
def _maxpool_bwd_block(blk, pb, dy2, am2, relu, y2, dx2):
    """Planes blk*pb.. of dx2 (planes, H*W) = scatter-add of dy2 at am2 (planes,
    Ho*Wo), written fully.  relu: pass except where y2 <= 0 (NaN passes)."""
    zero = dx2.dtype.type(0)
    for q in range(blk * pb, min(dx2.shape[0], blk * pb + pb)):
        d = dx2[q]
        for i in range(d.size):
            d[i] = zero
        g = dy2[q]
        a = am2[q]
        y = y2[q]
        for p in range(g.size):
            if not (relu and y[p] <= zero):  # at NaN the gradient passes, as torch's
                d[a[p]] += g[p]


# The averages scale each value before summing (no overflow near the dtype's
# maximum); without fastmath, LLVM may not factor the scaling back out of the sum.
_avg_window = njit(inline="always")(formulas.avg_window)
_avg_window_grad = njit(inline="always")(formulas.avg_window_grad)


@njit(cache=True)
def _avgpool_fwd_plane(plane, x, kh, kw, sh, sw, out):
    C, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    n, c = plane // C, plane % C
    for i in range(Ho):
        for j in range(Wo):
            _avg_window(x, kh, kw, sh, sw, out, n, c, i, j)


@njit(cache=True)
def _avgpool_bwd_plane(plane, dy, kh, kw, sh, sw, dx):
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    n, c = plane // C, plane % C
    for r in range(H):
        for q in range(W):
            _avg_window_grad(dy, kh, kw, sh, sw, dx, n, c, r, q)


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def _planes(a):
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2] * a.shape[3])


def _maxpool_fwd(x, kernel, stride, out, argmax_out, relu):
    name = "relu_maxpool2d_forward" if relu else "maxpool2d_forward"
    check_arrays(name, {"x": x}, {"out": out})
    check_pool(name, x.shape, kernel, stride, out.shape)
    check_argmax(name, argmax_out, out.shape)
    (kh, kw), (sh, sw) = pair(kernel), pair(stride)
    H, W = x.shape[2], x.shape[3]
    if out.size == 0:
        return out
    # The kernels write int32 indices (one compiled variant, not two); an
    # int64 argmax_out is filled from an int32 scratch copy.
    am = argmax_out if argmax_out.dtype == np.int32 else np.empty(argmax_out.shape, np.int32)
    nplanes, pb = x.shape[0] * x.shape[1], _per_block(H * W)
    if rows_pool(H, W, kh, kw, sh, sw):
        run_blocks(_maxpool_rows_block, -(-nplanes // pb), pb, x.reshape(-1), nplanes,
                   H, W, kh, kw, sh, relu, out.reshape(-1), am.reshape(-1))
    else:
        run_blocks(_maxpool_generic_block, -(-nplanes // pb), pb, _planes(x), H, W, kh, kw,
                   sh, sw, relu, _planes(out), _planes(am))
    if am is not argmax_out:
        argmax_out[...] = am
    return out


def maxpool2d_forward(x, kernel, stride, out, argmax_out):
    """out (N, C, Ho, Wo) = window maxima of x (N, C, H, W); argmax_out (same
    shape, int32 or int64; int32 is the fast path) = flat index i*W + j of the
    first maximum within its plane.  Both written fully.  Returns out."""
    return _maxpool_fwd(x, kernel, stride, out, argmax_out, False)


def relu_maxpool2d_forward(x, kernel, stride, out, argmax_out):
    """Fused relu then max-pool: out = maxpool(relu(x)), argmax as maxpool of
    relu(x) would give it (see the module docstring).  Returns out."""
    return _maxpool_fwd(x, kernel, stride, out, argmax_out, True)


def _maxpool_bwd(dy, argmax, relu, y, dx):
    name = "relu_maxpool2d_backward" if relu else "maxpool2d_backward"
    check_arrays(name, {"dy": dy, "out": y}, {"dx_out": dx})
    check_unpool(name, dy, y, dx)
    check_argmax(name, argmax, dy.shape, dx.shape[2] * dx.shape[3])
    if dx.size:
        am = argmax if argmax.dtype == np.int32 else argmax.astype(np.int32)
        nplanes, pb = dx.shape[0] * dx.shape[1], _per_block(dx.shape[2] * dx.shape[3])
        run_blocks(_maxpool_bwd_block, -(-nplanes // pb), pb, _planes(dy), _planes(am), relu,
                   _planes(y), _planes(dx))
    return dx


def maxpool2d_backward(dy, argmax, dx_out):
    """dx_out (N, C, H, W) = dL/dx: dy (N, C, Ho, Wo) added at argmax, zero
    elsewhere (accumulating where overlapping windows chose one pixel)."""
    return _maxpool_bwd(dy, argmax, False, dy, dx_out)


def relu_maxpool2d_backward(dy, argmax, out, dx_out):
    """Backward of relu_maxpool2d_forward; out is its pooled output (N, C, Ho,
    Wo): the gradient flows except where out <= 0 (NaN passes, as torch's)."""
    return _maxpool_bwd(dy, argmax, True, out, dx_out)


def _avgpool(plane_body, src, kernel, stride, dst):
    forward = plane_body is _avgpool_fwd_plane
    name = "avgpool2d_forward" if forward else "avgpool2d_backward"
    check_arrays(name, {"x" if forward else "dy": src}, {"out" if forward else "dx_out": dst})
    check_pool(name, *((src.shape, kernel, stride, dst.shape) if forward else
                       (dst.shape, kernel, stride, src.shape)))
    if dst.size:
        run_blocks(plane_body, dst.shape[0] * dst.shape[1], src, *pair(kernel), *pair(stride), dst)
    return dst


def avgpool2d_forward(x, kernel, stride, out):
    """out (N, C, Ho, Wo) = window means of x (N, C, H, W).  Returns out."""
    return _avgpool(_avgpool_fwd_plane, x, kernel, stride, out)


def avgpool2d_backward(dy, kernel, stride, dx_out):
    """dx_out (N, C, H, W) = dL/dx for avgpool2d_forward, written fully."""
    return _avgpool(_avgpool_bwd_plane, dy, kernel, stride, dx_out)


stamp(globals())  # the disk cache follows every kernel source
