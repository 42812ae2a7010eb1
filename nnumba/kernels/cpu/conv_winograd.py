"""The forward of a 3 x 3, stride-1 convolution by Winograd's minimal filtering
F(2 x 2, 3 x 3) (Lavin and Gray, 2016): each 2 x 2 block of outputs takes 16
multiplications per input channel instead of im2col's 36.

For every 4 x 4 input tile d (tiles 2 apart) and filter g, with the transforms
B^T, G and A^T written out in :func:`_input_tiles`, :func:`_filter_tiles` and
:func:`_output_tiles`:

    out block (2, 2) = A^T [ sum over c of (G g_c G^T) * (B^T d_c B) ] A

The sum over channels is, for each of the 16 tile positions k, one GEMM:

    M[k] (D, T) = U[k] (D, C) @ V[k] (C, T)

with U = the filters transformed, V = the input tiles transformed, T = tiles
per image * N; the 16 GEMMs run as whole single-threaded products spread over
numba's threads.  The batch is innermost (x -> (C, H, W, N), :mod:`.layout`),
so that every transform works on runs of N contiguous values, one per image,
which vectorise.  The transforms add and subtract only (G halves), so the result
matches the direct sum to a few float32 roundings.  ``uses_winograd`` says where
it pays: where the GEMM dominates (AlexNet's conv3-5), its 2.25x fewer products
outweigh the transforms.
"""
import numpy as np
from numba import njit

from .blas import address, gemm_in_thread
from .blocks import run_blocks
from .layout import _pad_rows, to_batch_inner, to_batch_outer
from .workspace import scratch
from ..cache_stamp import stamp

_SEQ = dict(cache=True, fastmath=True)

#: tiles (2 x 2 output blocks, all images) from which one image takes Winograd
ONE_IMAGE_TILES = 512


def uses_winograd(N, kh, kw, sh, sw, Ho, Wo) -> bool:
    """Whether a convolution the im2col path would run goes by Winograd instead:
    3 x 3, stride 1, and a batch (the transforms run along it) or a large map.
    Measured on 2 Zen 4 cores (docs/performance.md): 1.4-1.9x faster than im2col
    + GEMM on AlexNet's conv3-5 at batch 2-16, slower at batch 1 on 13 x 13."""
    tiles = N * ((Ho + 1) // 2) * ((Wo + 1) // 2)
    return kh == kw == 3 and sh == sw == 1 and (N >= 2 or tiles >= ONE_IMAGE_TILES)


@njit(**_SEQ)
def _filter_tiles(d, w, u):
    """u[:, d, :] = G g G^T (16 values per input channel) for filter d: G g for
    every channel first, then each row of u as one loop over the channels."""
    C = w.shape[1]
    g = w.reshape(w.shape[0], C * 9)[d]
    half = w.dtype.type(0.5)
    s = np.empty((4, 3, C), w.dtype)  # G g, per channel
    for c in range(C):
        k = 9 * c
        for j in range(3):
            s[0, j, c] = g[k + j]
            s[1, j, c] = half * (g[k + j] + g[k + 3 + j] + g[k + 6 + j])
            s[2, j, c] = half * (g[k + j] - g[k + 3 + j] + g[k + 6 + j])
            s[3, j, c] = g[k + 6 + j]
    for i in range(4):
        a, b, e = s[i, 0], s[i, 1], s[i, 2]
        u0, u1, u2, u3 = u[4 * i, d], u[4 * i + 1, d], u[4 * i + 2, d], u[4 * i + 3, d]
        for c in range(C):
            u0[c] = a[c]
            u1[c] = half * (a[c] + b[c] + e[c])
            u2[c] = half * (a[c] - b[c] + e[c])
            u3[c] = e[c]


@njit(**_SEQ)
def _input_tiles(c, xTp, tiles_h, tiles_w, v):
    """v[:, c, t] = B^T d B for every tile t = (th, tw, n) of channel c, d the 4 x 4
    tile at rows 2 th.., columns 2 tw.. of the padded image n: per row of tiles,
    B^T d down the columns (4 rows of the padded width), then along the rows."""
    _, Hp, Wp, N = xTp.shape
    run = Wp * N
    t = np.empty((4, run), xTp.dtype)
    for th in range(tiles_h):
        a0, a1 = xTp[c, 2 * th].reshape(run), xTp[c, 2 * th + 1].reshape(run)
        a2, a3 = xTp[c, 2 * th + 2].reshape(run), xTp[c, 2 * th + 3].reshape(run)
        for q in range(run):
            t[0, q] = a0[q] - a2[q]
            t[1, q] = a1[q] + a2[q]
            t[2, q] = a2[q] - a1[q]
            t[3, q] = a1[q] - a3[q]
        lo = th * tiles_w * N
        for i in range(4):
            ti = t[i]
            v0, v1 = v[4 * i, c, lo:lo + tiles_w * N], v[4 * i + 1, c, lo:lo + tiles_w * N]
            v2, v3 = v[4 * i + 2, c, lo:lo + tiles_w * N], v[4 * i + 3, c, lo:lo + tiles_w * N]
            for tw in range(tiles_w):
                o, q = tw * N, 2 * tw * N
                for n in range(N):
                    v0[o + n] = ti[q + n] - ti[q + 2 * N + n]
                    v1[o + n] = ti[q + N + n] + ti[q + 2 * N + n]
                    v2[o + n] = ti[q + 2 * N + n] - ti[q + N + n]
                    v3[o + n] = ti[q + N + n] - ti[q + 3 * N + n]


@njit(**_SEQ)
def _products(k, fn, u, v, m):
    """m[k] = u[k] @ v[k] on the calling thread."""
    gemm_in_thread(fn, u[k], v[k], m[k])


@njit(**_SEQ)
def _output_tiles(d, m, b, tiles_h, tiles_w, oT):
    """oT[d] (Ho, Wo, N) blocks = A^T m A + b[d] for every tile (th, tw, n): per row
    of tiles, A^T m down the columns, then along the rows; a block's row or
    column past the output's edge (odd sizes) is dropped."""
    _, Ho, Wo, N = oT.shape
    run = tiles_w * N
    r = np.empty((2, 4, run), m.dtype)
    bias = b[d]
    for th in range(tiles_h):
        lo = th * run
        for j in range(4):
            m0, m1 = m[j, d, lo:lo + run], m[4 + j, d, lo:lo + run]
            m2, m3 = m[8 + j, d, lo:lo + run], m[12 + j, d, lo:lo + run]
            for q in range(run):
                r[0, j, q] = m0[q] + m1[q] + m2[q]
                r[1, j, q] = m1[q] - m2[q] - m3[q]
        for i in range(min(2, Ho - 2 * th)):
            row = oT[d, 2 * th + i].reshape(Wo * N)
            q0, q1, q2, q3 = r[i, 0], r[i, 1], r[i, 2], r[i, 3]
            for tw in range(tiles_w):
                o = tw * N
                for n in range(N):
                    row[2 * o + n] = q0[o + n] + q1[o + n] + q2[o + n] + bias
                if 2 * tw + 1 < Wo:
                    for n in range(N):
                        row[2 * o + N + n] = q1[o + n] - q2[o + n] - q3[o + n] + bias


def forward_winograd(x, w, b, ph, pw, out):
    """out (N, D, Ho, Wo) = x (N, C, H, W) cross-correlated with w (D, C, 3, 3),
    stride 1, padding (ph, pw), plus b (D,); out written fully."""
    N, C, H, W = x.shape
    D, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    tiles_h, tiles_w = (Ho + 1) // 2, (Wo + 1) // 2
    T = tiles_h * tiles_w * N
    xT = scratch("xT", (C, H, W, N), x.dtype)
    to_batch_inner(x.reshape(N, C * H * W), xT.reshape(C * H * W, N))
    # padded to cover every 4 x 4 tile: one more row or column for an odd output
    xTp = scratch("xTpad", (C, 2 * tiles_h + 2, 2 * tiles_w + 2, N), x.dtype)
    _pad_rows(xT, ph, pw, xTp)
    u = scratch("winograd_u", (16, D, C), x.dtype)
    v = scratch("winograd_v", (16, C, T), x.dtype)
    m = scratch("winograd_m", (16, D, T), x.dtype)
    run_blocks(_filter_tiles, D, w, u)
    run_blocks(_input_tiles, C, xTp, tiles_h, tiles_w, v)
    fn = address(x.dtype)
    if fn is None:  # no BLAS of nnumba's own: numpy's
        np.matmul(u, v, out=m)
    else:
        run_blocks(_products, 16, fn, u, v, m)
    oT = scratch("gemm_out", (D, Ho, Wo, N), x.dtype)
    run_blocks(_output_tiles, D, m, b, tiles_h, tiles_w, oT)
    to_batch_outer(oT.reshape(D * Ho * Wo, N), out.reshape(N, D * Ho * Wo))
    return out


stamp(globals())  # the disk cache follows every kernel source
