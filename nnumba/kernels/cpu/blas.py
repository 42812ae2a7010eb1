"""The GEMMs of the CPU kernel set, on nnumba's own single-threaded OpenBLAS, split
over numba's threads.

numpy's OpenBLAS runs its own thread pool, whose workers spin for a while after
each call; numba's workers, running nnumba's other kernels in between, then wait
for a core, and a training step that alternates between the two pools ran 20-30 %
slower (docs/performance.md).  numpy's OpenBLAS is the user's too, and its
settings are not nnumba's to change.  So nnumba loads its own copy of the library
(the scipy-openblas32 wheel, which nothing else loads) with one thread, and
splits each large product into column (or row) blocks over numba's threads: one
pool for everything nnumba computes.  ``OPENBLAS_NUM_THREADS=1`` is in the
environment only while that copy loads and reads it.  Where the wheel is missing,
numpy's matmul does the work.

``gemm(a, b, out, accumulate)``: out (M, N) = a @ b (+ out with accumulate), one
float dtype; ``a`` and ``b`` C-contiguous or transposes of C-contiguous arrays
(what the layers pass), ``out`` C-contiguous.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, types
from numba.extending import intrinsic

_NO_TRANS, _TRANS = 111, 112
#: below this many multiply-adds a product runs on the calling thread alone
_SPLIT = 1 << 18
_lib: list = []   # [(sgemm address, dgemm address) or None], loaded on first use


def _addresses():
    if not _lib:
        _lib.append(_load())
    return _lib[0]


def _load():
    spec = importlib.util.find_spec("scipy_openblas32")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations)), "lib").glob(
        "libscipy_openblas*.so*"))
    if not found:
        return None
    ours = "OPENBLAS_NUM_THREADS" not in os.environ
    if ours:  # read by this copy as it loads, and by nothing else: removed at once
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        lib = ctypes.CDLL(str(found[0]))
    except OSError:
        return None
    finally:
        if ours:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
    return tuple(ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                 for name in ("scipy_cblas_sgemm", "scipy_cblas_dgemm"))


@intrinsic
def _cblas_gemm(typingctx, fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """cblas_?gemm(RowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), the
    function at address ``fn``, the arrays at addresses a, b, c."""
    signature = types.void(fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, sig, args):
        i32, ptr = ir.IntType(32), ir.IntType(8).as_pointer()
        real = context.get_value_type(sig.args[6])
        fnty = ir.FunctionType(ir.VoidType(), [i32] * 6 + [real, ptr, i32, ptr, i32, real,
                                                           ptr, i32])

        def num(v):
            return builder.trunc(v, i32)

        def addr(v):
            return builder.inttoptr(v, ptr)
        f, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc = args
        builder.call(builder.inttoptr(f, fnty.as_pointer()),
                     [ir.Constant(i32, 101), num(ta), num(tb), num(m), num(n), num(k), alpha,
                      addr(a), num(lda), addr(b), num(ldb), beta, addr(c), num(ldc)])
        return context.get_dummy_value()
    return signature, codegen


@njit(cache=True)
def _block(fn, a, ta, b, tb, c, beta, p, parts, by_rows):
    """Block p of ``parts`` of c = op(a) @ op(b) (+ beta c): rows or columns of c."""
    m, n = c.shape
    k = a.shape[0] if ta == _TRANS else a.shape[1]
    size = c.itemsize
    lda, ldb = a.shape[1], b.shape[1]
    # signed addresses: numba types uint64 + int64 as a float
    pa, pb, pc = np.int64(a.ctypes.data), np.int64(b.ctypes.data), np.int64(c.ctypes.data)
    if by_rows:   # rows i0:i1 of c, of op(a)
        i0, i1 = p * m // parts, (p + 1) * m // parts
        pa += i0 * (size if ta == _TRANS else lda * size)
        pc += i0 * n * size
        m = i1 - i0
    else:         # columns j0:j1 of c, of op(b)
        j0, j1 = p * n // parts, (p + 1) * n // parts
        pb += j0 * (ldb * size if tb == _TRANS else size)
        pc += j0 * size
        n = j1 - j0
    if m and n:
        _cblas_gemm(fn, ta, tb, m, n, k, c.dtype.type(1), pa, max(lda, 1), pb, max(ldb, 1),
                    c.dtype.type(beta), pc, max(c.shape[1], 1))


@njit(cache=True)
def _gemm_alone(fn, a, ta, b, tb, c, beta):
    _block(fn, a, ta, b, tb, c, beta, 0, 1, False)


@njit(parallel=True, cache=True)
def _gemm_split(fn, a, ta, b, tb, c, beta, parts, by_rows):
    for p in prange(parts):
        _block(fn, a, ta, b, tb, c, beta, p, parts, by_rows)


def _operand(x):
    """(C-contiguous array, trans flag) for x or its transpose, or None."""
    if x.flags.c_contiguous:
        return x, _NO_TRANS
    if x.T.flags.c_contiguous:
        return x.T, _TRANS
    return None


def gemm(a, b, out, accumulate=False):
    """out = a @ b, or out += a @ b; returns out."""
    addresses = _addresses()
    ops = (_operand(a), _operand(b))
    if addresses is None or None in ops or not out.flags.c_contiguous \
            or not (a.dtype == b.dtype == out.dtype) or out.dtype not in (np.float32,
                                                                          np.float64):
        if accumulate:
            out += a @ b
        else:
            np.matmul(a, b, out=out)
        return out
    (a, ta), (b, tb) = ops
    fn = addresses[out.dtype == np.float64]
    beta = 1.0 if accumulate else 0.0
    m, n = out.shape
    parts = get_num_threads()
    if parts < 2 or m * n * a.size // max(m, 1) < _SPLIT:
        _gemm_alone(fn, a, ta, b, tb, out, beta)
    else:  # split the longer side of out, so that each block stays a real GEMM
        _gemm_split(fn, a, ta, b, tb, out, beta, parts, m > n)
    return out
