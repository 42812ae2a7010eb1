"""Layout kernels of the GEMM convolution path: batch-outer <-> batch-inner
transposes, zero padding and cropping of batch-inner arrays, and the short copies
and sums they are made of.

A batch-inner array holds the batch innermost, (C, H, W, N) instead of
(N, C, H, W): every im2col copy is then a run of N (or Wo*N) contiguous values,
however small the map.
"""
from numba import njit
from ..cache_stamp import stamp
from .blocks import run_blocks

_SEQ = dict(cache=True, fastmath=True)


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


@njit(**_SEQ)
def _transpose(q, s, d, outer_is_source):
    """Block q of d = s.T between a batch-outer (N, M) and a batch-inner (M, N)
    array: columns (rows) 64q.. along M; the tiles walk the batch-outer array
    along its rows.  One kernel for both directions (each costs compile time)."""
    M = s.shape[1] if outer_is_source else s.shape[0]
    k0 = q * 64
    k1 = min(M, k0 + 64)
    if outer_is_source:
        _tr_rc(s[:, k0:k1], d[k0:k1, :])
    else:
        _tr_wc(s[k0:k1, :], d[:, k0:k1])


def to_batch_inner(x2, xT2):
    """xT2 (M, N) = x2 (N, M).T, in parallel over blocks of 64 along M."""
    run_blocks(_transpose, -(-x2.shape[1] // 64), x2, xT2, True)


def to_batch_outer(xT2, x2):
    """x2 (N, M) = xT2 (M, N).T, in parallel over blocks of 64 along M."""
    run_blocks(_transpose, -(-xT2.shape[0] // 64), xT2, x2, False)


@njit(**_SEQ)
def _pad_rows(xT, ph, pw, xTp):
    """xTp (C, Hp, P, Wq, N) = xT (C, H, W, N) at offset (ph, pw), zero elsewhere (rows of
    N), column j of a padded row at [j % P, j // P] (P = 1: as it is; P = 2: even
    columns, then odd ones): Hp = H + 2 ph, P Wq = W + 2 pw, or more where a caller
    needs more zeros after."""
    C, H, W, N = xT.shape
    Hp, P, Wq = xTp.shape[1], xTp.shape[2], xTp.shape[3]
    zero = xTp.dtype.type(0)
    for c in range(C):
        for i in range(Hp):
            for j in range(P * Wq):
                dst = xTp[c, i, j % P, j // P]
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


stamp(globals())  # the disk cache follows every kernel source
