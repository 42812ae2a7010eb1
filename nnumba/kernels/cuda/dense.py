"""The dense layer's kernels on the device: a tiled shared-memory matmul with the
transposed products backward needs, and the bias kernels.

matmul(a, b, out, trans_a, trans_b, accumulate): out (M, N) (+)= op(a) @ op(b)
with op(a) (M, K), op(b) (K, N). The Linear layer needs three products:
forward x @ w.T (trans_b), weight gradient dy.T @ x (trans_a), input gradient
dy @ w. The transposes are read in the tile loader, never materialised.

Tiling: a block of 16 x 16 threads computes a 128 x 128 tile of out; each thread
holds an 8 x 8 register tile (rows ty + 16 i, columns tx + 16 j: strided, so a
warp's shared-memory reads hit distinct banks or broadcast). K advances 8 at a
time through two shared-memory buffers: the next tile's global loads are issued
into registers before the current tile is multiplied, and one barrier per step
separates the buffers; shared rows are padded so that the transposing stores do
not conflict on banks. ptxas (sm_90, float32): 172 registers, no spills, 17 KB
shared: one block of 256 threads per SM. Loads are guarded, so any M, N, K works
(edges are zero-filled).
"""
from numba import cuda

from .. import formulas
from ._grid import configure, over
from ..cache_stamp import stamp
from ..flat import check_bias, check_matmul

BM = BN = 128      # output tile per block
BK = 8             # K step
TM = TN = 8        # outputs per thread along each axis
TX = BN // TN      # 16 threads along N
TY = BM // TM      # 16 threads along M
NT = TX * TY       # 256 threads
LA = BM * BK // NT  # tile elements each thread loads from a (4)
LB = BN * BK // NT  # ... and from b (4)
# Shared rows of BM + 4 words: a warp storing 8 k x 4 m (the transposing loads)
# then hits 32 different banks instead of 4.
ROW = BM + 4

@cuda.jit(device=True, inline=True)
def _load(a, ta, M, K, m0, k0, tid, r):
    # Element r of this thread's share of the (BM x BK) tile of op(a), read
    # along a's stored rows so that neighbouring threads read neighbouring words.
    # b's tile of op(b) is the same load with the transposition flipped, as BN == BM:
    # _load(b, not tb, N, K, n0, ...) reads b stored (N, K) along its rows too.
    idx = tid + r * NT
    if ta:                      # a stored (K, M)
        kk = idx // BM
        mm = idx - kk * BM
        ok = k0 + kk < K and m0 + mm < M
        v = a[k0 + kk, m0 + mm] if ok else a.dtype.type(0)
    else:                       # a stored (M, K)
        mm = idx // BK
        kk = idx - mm * BK
        ok = k0 + kk < K and m0 + mm < M
        v = a[m0 + mm, k0 + kk] if ok else a.dtype.type(0)
    return v, kk, mm


@cuda.jit(cache=True, fastmath=True)
def _matmul(a, b, out, ta, tb, accumulate):
    M, N = out.shape
    K = a.shape[0] if ta else a.shape[1]
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * TX + tx
    m0 = cuda.blockIdx.y * BM
    n0 = cuda.blockIdx.x * BN
    As = cuda.shared.array((2, BK, ROW), a.dtype)
    Bs = cuda.shared.array((2, BK, ROW), a.dtype)
    acc = cuda.local.array((TM, TN), a.dtype)
    af = cuda.local.array(TM, a.dtype)
    bf = cuda.local.array(TN, a.dtype)
    ra = cuda.local.array(LA, a.dtype)
    rb = cuda.local.array(LB, a.dtype)
    for i in range(TM):
        for j in range(TN):
            acc[i, j] = 0
    # first K tile into buffer 0
    for r in range(LA):
        v, kk, mm = _load(a, ta, M, K, m0, 0, tid, r)
        As[0, kk, mm] = v
    for r in range(LB):
        v, kk, nn = _load(b, not tb, N, K, n0, 0, tid, r)
        Bs[0, kk, nn] = v
    cuda.syncthreads()
    steps = (K + BK - 1) // BK
    for step in range(steps):
        cur = step & 1
        more = step + 1 < steps
        k1 = (step + 1) * BK
        if more:  # issue the next tile's global loads before computing this one
            for r in range(LA):
                v, kk, mm = _load(a, ta, M, K, m0, k1, tid, r)
                ra[r] = v
            for r in range(LB):
                v, kk, nn = _load(b, not tb, N, K, n0, k1, tid, r)
                rb[r] = v
        for kk in range(BK):
            for i in range(TM):
                af[i] = As[cur, kk, ty + TY * i]
            for j in range(TN):
                bf[j] = Bs[cur, kk, tx + TX * j]
            for i in range(TM):
                for j in range(TN):
                    acc[i, j] += af[i] * bf[j]
        if more:  # the other buffer was last read before the previous barrier
            nxt = 1 - cur
            for r in range(LA):
                idx = tid + r * NT
                if ta:
                    As[nxt, idx // BM, idx % BM] = ra[r]
                else:
                    As[nxt, idx % BK, idx // BK] = ra[r]
            for r in range(LB):
                idx = tid + r * NT
                if tb:
                    Bs[nxt, idx % BK, idx // BK] = rb[r]
                else:
                    Bs[nxt, idx // BN, idx % BN] = rb[r]
        cuda.syncthreads()
    for i in range(TM):
        m = m0 + ty + TY * i
        if m < M:
            for j in range(TN):
                n = n0 + tx + TX * j
                if n < N:
                    if accumulate:
                        out[m, n] += acc[i, j]
                    else:
                        out[m, n] = acc[i, j]


def matmul(a, b, out, trans_a=False, trans_b=False, accumulate=False):
    """out (M, N) = op(a) @ op(b), or += with accumulate; op transposes when asked.
    Device arrays, 2-D, C-contiguous, one float dtype, checked here as on the CPU
    (a wrong shape would read out of bounds). Returns out."""
    check_matmul(a, b, out, trans_a, trans_b)
    M, N = out.shape
    if M and N:
        grid = ((N + BN - 1) // BN, (M + BM - 1) // BM)
        configure(_matmul, grid, (TX, TY))(a, b, out, bool(trans_a), bool(trans_b),
                                           bool(accumulate))
    return out


_bias_relu = cuda.jit(device=True, inline=True)(formulas.bias_relu)
_relu_grad = cuda.jit(device=True, inline=True)(formulas.relu_grad)


@cuda.jit(cache=True)
def _add_bias(relu, y, b):
    """y (N, D) += b (D,) on every row; relu: y = relu(y + b) (a Linear and its ReLU)."""
    n, d = y.shape
    for t in range(cuda.grid(1), n * d, cuda.gridsize(1)):
        if relu:
            _bias_relu(y, b, t // d, t % d)
        else:
            y[t // d, t % d] += b[t % d]


@cuda.jit(cache=True)
def _accumulate_bias_grad(dl_dy, db):
    """db (D,) += column sums of dl_dy (N, D), each a compensated sum, as the average
    pools' (formulas.adaptive_avg): the CPU's sums in float64, which a GPU's float32
    path avoids."""
    # One thread per column: the threads of a warp read neighbouring words of a row.
    n, d = dl_dy.shape
    for j in range(cuda.grid(1), d, cuda.gridsize(1)):
        s = carry = zero = db.dtype.type(0)
        for i in range(n):
            v = dl_dy[i, j] - carry
            t = s + v
            carry = (t - s) - v if t - t == zero else zero
            s = t
        db[j] += s


@cuda.jit(cache=True)
def _relu_backward_bias_grad(y, dl_dy, dl_ds, db):
    # One thread per column, a compensated sum, as _accumulate_bias_grad.
    n, d = y.shape
    for j in range(cuda.grid(1), d, cuda.gridsize(1)):
        s = carry = zero = db.dtype.type(0)
        for i in range(n):
            _relu_grad(y, dl_dy, dl_ds, (i, j))
            v = dl_ds[i, j] - carry
            t = s + v
            carry = (t - s) - v if t - t == zero else zero
            s = t
        db[j] += s


_add_bias_all = over(_add_bias, lead=(False,), name="add_bias")
_accumulate_bias_grad_all = over(_accumulate_bias_grad, lambda dl_dy, db: db.size)
_add_bias_relu_all = over(_add_bias, lead=(True,), name="add_bias_relu")
_relu_backward_bias_grad_all = over(_relu_backward_bias_grad, lambda y, *rest: y.shape[1])


# The shapes checked first, as the CPU set's: a thread would index past a short bias.
def add_bias(y, b):
    check_bias("add_bias", y, b)
    _add_bias_all(y, b)


def add_bias_relu(y, b):
    check_bias("add_bias_relu", y, b)
    _add_bias_relu_all(y, b)


def accumulate_bias_grad(dl_dy, db):
    check_bias("accumulate_bias_grad", dl_dy, db)
    _accumulate_bias_grad_all(dl_dy, db)


def relu_backward_bias_grad(y, dl_dy, dl_ds, db):
    check_bias("relu_backward_bias_grad", y, db, dl_dy, dl_ds)
    _relu_backward_bias_grad_all(y, dl_dy, dl_ds, db)


stamp(globals())  # the disk cache follows every kernel source
