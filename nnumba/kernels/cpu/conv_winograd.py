"""The forward of a 3 x 3 or 5 x 5, stride-1 convolution by Winograd's minimal
filtering F(2 x 2, r x r) (Lavin and Gray, 2016): each 2 x 2 block of outputs
takes (r + 1)^2 multiplications per input channel instead of im2col's 4 r^2
(16 for 36 at 3 x 3, 36 for 100 at 5 x 5).

For every (r + 1) x (r + 1) input tile d (tiles 2 apart) and filter g, with the
transforms B^T, G and A^T of :func:`transforms`:

    out block (2, 2) = A^T [ sum over c of (G g_c G^T) * (B^T d_c B) ] A

The sum over channels is, for each of the (r + 1)^2 tile positions k, one GEMM:

    M[k] (D, T) = U[k] (D, C) @ V[k] (C, T)

with U = the filters transformed, V = the input tiles transformed, T = tiles
per image * N; the GEMMs run as whole single-threaded products spread over
numba's threads.  The batch is innermost (x -> (C, H, W, N), :mod:`.layout`),
and the padded columns split into even and odd ones, so that every transform
works on long runs of contiguous values, which vectorise.  B^T and A^T hold small
integers, so the input and output transforms are exact sums of a few terms.  The
float32 error against the direct sum is ~1.5x im2col's at 3 x 3; at 5 x 5, where
the points 2 and -2 weigh more, ~8x at 64 channels and ~25x at 512 (about
1e-6 of sum |w| |x|: stable, growing as the square root of C).  ``uses_winograd``
says where it pays.
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
#: the interpolation points of F(2, r), besides infinity: small integers keep B^T
#: and A^T exact (0, +-1, +-2 is the usual choice for r = 5)
POINTS = {3: (0.0, 1.0, -1.0), 5: (0.0, 1.0, -1.0, 2.0, -2.0)}


def transforms(r):
    """(B^T (a, a), G (a, r), A^T (2, a)), a = r + 1, in float64, of F(2, r) by
    Toom-Cook at :data:`POINTS` and infinity: a row of outputs y_i = sum_k d_(i+k) g_k
    is A^T [(G g) * (B^T d)].  A^T and G evaluate at the points, B^T interpolates
    (the inverse Vandermonde matrix, its scale moved into G)."""
    p = np.array(POINTS[r])
    a = r + 1
    vander = np.zeros((a, a))
    vander[:-1] = p[:, None] ** np.arange(a)
    vander[-1, -1] = 1.0
    scale = np.array([np.prod([q - o for o in p if o != q]) for q in p] + [1.0])
    bt = np.round(scale[:, None] * np.linalg.inv(vander).T)  # integers at these points
    g = vander[:, :r] / scale[:, None]
    g[-1, -1] = 1.0  # infinity picks the last tap
    at = vander[:, :2].T.copy()
    at[1, -1] = 1.0
    return bt, g, at


_TRANSFORMS = {r: transforms(r) for r in POINTS}


def growth(r):
    """How much B^T d B, G g G^T and A^T m A can grow the largest magnitude of d, g
    and m: each matrix's largest row sum of magnitudes, squared."""
    return tuple(float(np.abs(mat).sum(axis=1).max()) ** 2 for mat in _TRANSFORMS[r])


#: outputs per map from which a 5 x 5 convolution takes Winograd: AlexNet's conv2
#: (729) does.  The lecture CNN's conv2 (64) keeps im2col: its forward by Winograd
#: took 4.7 instead of 6.9 ms at batch 100, but the weight gradient then builds the
#: columns im2col keeps for it, and the epoch took as long either way.
FIVE_MAP = 256


def uses_winograd(N, kh, kw, sh, sw, Ho, Wo) -> bool:
    """Whether a convolution the im2col path would run goes by Winograd instead:
    3 x 3, or 5 x 5 on a map of :data:`FIVE_MAP` outputs or more, stride 1, and a
    batch (the transforms run along it) or a large map.  Measured on 2 Zen 4 cores
    (docs/performance.md): 1.4-1.9x faster than im2col + GEMM on AlexNet's conv3-5
    at batch 2-16 and 1.5x on its conv2 at batch 16, slower at batch 1 on 13 x 13."""
    if kh != kw or kh not in POINTS or sh != 1 or sw != 1 or (kh == 5 and Ho * Wo < FIVE_MAP):
        return False
    return N >= 2 or N * ((Ho + 1) // 2) * ((Wo + 1) // 2) >= ONE_IMAGE_TILES


def _rows(mat, dtype):
    """mat's rows as tuples of ``dtype`` scalars: a sum over a row then has a length
    numba knows when it compiles, and unrolls."""
    return tuple(tuple(dtype.type(e) for e in row) for row in mat)


@njit(inline="always")
def _add_scaled(dst, coef, src, first):
    """dst = coef * src, or += where not ``first``; one loop over whole slices (an
    index with a runtime offset would keep numba's negative-index check in the
    loop, which then does not vectorise: 12x slower)."""
    if first:
        for q in range(dst.size):
            dst[q] = coef * src[q]
    else:
        for q in range(dst.size):
            dst[q] += coef * src[q]


@njit(**_SEQ)
def _filter_tiles(d, w, g_mat, u):
    """u[a * i + j, d, :] = (G g G^T)[i, j] for filter d, over its input channels:
    G g first, then times G^T, each a sum of rows along the channels."""
    C, r, a = w.shape[1], w.shape[2], g_mat.shape[0]
    taps = np.ascontiguousarray(w[d].reshape(C, r * r).T)  # (r * r, C): rows along C
    s = np.empty((a, r, C), u.dtype)  # G g, per channel
    for i in range(a):
        for j in range(r):
            for k in range(r):
                _add_scaled(s[i, j], g_mat[i, k], taps[k * r + j], k == 0)
    for i in range(a):
        for j in range(a):
            for k in range(r):
                _add_scaled(u[a * i + j, d], g_mat[j, k], s[i, k], k == 0)


@njit(**_SEQ)
def _input_tiles(c, xq, bt, tiles_w, v):
    """v[a * i + j, c, t] = (B^T d B)[i, j] for every tile t = (th, tw, n) of channel
    c, d the tile at rows 2 th.., columns 2 tw.. of the padded image n, xq's columns
    split into even and odd: per row of tiles, B^T d down the columns (a rows of
    the padded width, into s), then along the rows, where the tiles' k-th columns
    (2 tw + k) are one run of s from column k // 2 of phase k % 2 on.  Only B^T's
    nonzero terms are summed (every row of B^T has one)."""
    _, Hp, _, Wq, N = xq.shape
    a, run, wide = bt.shape[0], 2 * Wq * N, tiles_w * N
    xc = xq[c].reshape(Hp, run)
    s = np.empty((a, run), xq.dtype)
    for th in range((Hp - a + 2) // 2):
        for i in range(a):
            first = True
            for k in range(a):
                if bt[i, k] != 0:
                    _add_scaled(s[i], bt[i, k], xc[2 * th + k], first)
                    first = False
        for i in range(a):
            for j in range(a):
                vij, first = v[a * i + j, c, th * wide:(th + 1) * wide], True
                for k in range(a):
                    if bt[j, k] != 0:
                        lo = (k % 2) * Wq * N + (k // 2) * N
                        _add_scaled(vij, bt[j, k], s[i, lo:lo + wide], first)
                        first = False


@njit(**_SEQ)
def _products(k, fn, u, v, m):
    """m[k] = u[k] @ v[k] on the calling thread."""
    gemm_in_thread(fn, u[k], v[k], m[k])


@njit(**_SEQ)
def _output_tiles(d, m, at_rows, b, tiles_h, tiles_w, oT):
    """oT[d] (Ho, Wo, N) blocks = A^T m A + b[d] for every tile (th, tw, n): per row
    of tiles, A^T m down the columns (into s), then along the rows; a block's row or
    column past the output's edge (odd sizes) is dropped.  Both rows of A^T are
    summed in one pass, their terms unrolled (``at_rows`` are tuples)."""
    _, Ho, Wo, N = oT.shape
    a, run, bias = len(at_rows[0]), tiles_w * N, b[d]
    a0, a1 = at_rows[0], at_rows[1]
    s = np.empty((2, a, run), m.dtype)
    for th in range(tiles_h):
        lo = th * run
        for j in range(a):
            for q in range(run):
                acc0, acc1 = a0[0] * m[j, d, lo + q], a1[0] * m[j, d, lo + q]
                for k in range(1, len(a0)):
                    acc0 += a0[k] * m[a * k + j, d, lo + q]
                    acc1 += a1[k] * m[a * k + j, d, lo + q]
                s[0, j, q], s[1, j, q] = acc0, acc1
        for i in range(min(2, Ho - 2 * th)):
            row = oT[d, 2 * th + i].reshape(Wo * N)
            for tw in range(tiles_w):
                o, q = 2 * tw * N, tw * N
                for n in range(N):
                    acc0, acc1 = bias + a0[0] * s[i, 0, q + n], bias + a1[0] * s[i, 0, q + n]
                    for k in range(1, len(a0)):
                        acc0 += a0[k] * s[i, k, q + n]
                        acc1 += a1[k] * s[i, k, q + n]
                    row[o + n] = acc0
                    if o + N + n < Wo * N:  # an odd output's last block has one column
                        row[o + N + n] = acc1


def forward_winograd(x, w, b, ph, pw, out):
    """out (N, D, Ho, Wo) = x (N, C, H, W) cross-correlated with w (D, C, r, r), r 3
    or 5, stride 1, padding (ph, pw), plus b (D,); out written fully."""
    N, C, H, W = x.shape
    D, Ho, Wo, r = out.shape[1], out.shape[2], out.shape[3], w.shape[2]
    bt, g_mat, at = _TRANSFORMS[r]
    a = r + 1
    tiles_h, tiles_w = (Ho + 1) // 2, (Wo + 1) // 2
    T = tiles_h * tiles_w * N
    xT = scratch("xT", (C, H, W, N), x.dtype)
    to_batch_inner(x.reshape(N, C * H * W), xT.reshape(C * H * W, N))
    # padded to cover every tile (one more row or column for an odd output), and
    # split into even and odd columns
    xq = scratch("xTpad", (C, 2 * tiles_h + r - 1, 2, tiles_w + r // 2, N), x.dtype)
    _pad_rows(xT, ph, pw, xq)
    u = scratch("winograd_u", (a * a, D, C), x.dtype)
    v = scratch("winograd_v", (a * a, C, T), x.dtype)
    m = scratch("winograd_m", (a * a, D, T), x.dtype)
    run_blocks(_filter_tiles, D, w, g_mat.astype(x.dtype), u)
    run_blocks(_input_tiles, C, xq, bt.astype(x.dtype), tiles_w, v)
    fn = address(x.dtype)
    if fn is None:  # no BLAS of nnumba's own: numpy's
        np.matmul(u, v, out=m)
    else:
        run_blocks(_products, a * a, fn, u, v, m)
    oT = scratch("gemm_out", (D, Ho, Wo, N), x.dtype)
    run_blocks(_output_tiles, D, m, _rows(at, x.dtype), b, tiles_h, tiles_w, oT)
    to_batch_outer(oT.reshape(D * Ho * Wo, N), out.reshape(N, D * Ho * Wo))
    return out


stamp(globals())  # the disk cache follows every kernel source
