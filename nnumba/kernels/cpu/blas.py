"""The GEMMs of the CPU kernel set, on nnumba's own single-threaded OpenBLAS, split
over numba's threads.

numpy's OpenBLAS runs its own thread pool, whose workers spin for a while after
each call; numba's workers, running nnumba's other kernels in between, then wait
for a core, and a training step that alternates between the two pools ran 30-50 %
slower (docs/performance.md).  numpy's OpenBLAS is the user's too, and its
settings are not nnumba's to change.  So nnumba loads its own copy of the library
(the scipy-openblas32 wheel, which nothing else loads) with one thread, and
splits each large product into column (or row) blocks over numba's threads: one
pool for everything nnumba computes.  ``OPENBLAS_NUM_THREADS=1`` is in the
environment only while that copy loads and reads it.  Where the wheel is missing,
numpy's matmul does the work.

The copy runs the kernels for the instructions numba compiles nnumba's own
kernels for on this CPU (:func:`core_type`), whatever ``OPENBLAS_CORETYPE``
asks of numpy's copy: on an AVX-512 machine whose environment pins OpenBLAS to
``Haswell`` (AVX2), the SkylakeX kernels ran its GEMMs 1.4-1.9x faster
(docs/performance.md).  ``NNUMBA_BLAS_CORETYPE`` chooses another.

A product with one row or one column runs as a matrix-vector product (GEMV),
which reads the matrix once where GEMM would pack it; one column of samples' rows
runs nnumba's own loop, which sums every row in the same order.  A few rows (a
small batch) times a weight matrix stored row by row runs :mod:`.few_rows`.

``gemm(a, b, out, accumulate)``: out (M, N) = a @ b (+ out with accumulate), one
float dtype; ``a`` and ``b`` C-contiguous or transposes of C-contiguous arrays
(what the layers pass), ``out`` C-contiguous.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, types
from numba.extending import intrinsic
from .few_rows import FEW_ROWS, few_rows_product
from ..cache_stamp import stamp

_NO_TRANS, _TRANS = 111, 112
#: below this many multiply-adds a product runs on the calling thread alone
_SPLIT = 1 << 18
_lib: list = []   # [(sgemm address, dgemm address) or None], loaded on first use
_core: list = []  # [the kernels OpenBLAS says it loaded]
_own: list = []   # [the library's ctypes handle]


def keep_single_threaded():
    """Set nnumba's copy back to one thread, where something limited every loaded
    OpenBLAS to n (an MPI rank's share of the cores)."""
    setter = getattr(_own[0], "scipy_openblas_set_num_threads", None) if _own else None
    if setter is not None:
        setter(1)


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
    # Read by this copy as it loads, and by nothing else: restored at once.  One thread
    # whatever the user's OPENBLAS_NUM_THREADS (numpy's copy's setting) asks: the
    # products are split over numba's threads, and pools nested in them would contend.
    settings = {"OPENBLAS_CORETYPE": core_type(), "OPENBLAS_NUM_THREADS": "1"}
    saved = {key: os.environ.get(key) for key in settings}
    _set_environ(settings)
    try:
        lib = ctypes.CDLL(str(found[0]))
    except OSError:
        return None
    finally:
        _set_environ(saved)
    _own.append(lib)
    corename = getattr(lib, "scipy_openblas_get_corename", None)
    if corename is not None:
        corename.restype = ctypes.c_char_p
        _core.append(corename().decode())
        chosen = os.environ.get("NNUMBA_BLAS_CORETYPE")
        if chosen and chosen.lower() != _core[0].lower():  # else ignored without a word
            warnings.warn(f"NNUMBA_BLAS_CORETYPE={chosen!r}: OpenBLAS loaded its {_core[0]} "
                          f"kernels instead (not a name it knows, or not for this CPU)",
                          stacklevel=2)
    return tuple(ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                 for name in ("scipy_cblas_sgemm", "scipy_cblas_dgemm",
                              "scipy_cblas_sgemv", "scipy_cblas_dgemv"))


def _set_environ(values):
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def core_type() -> str | None:
    """The OpenBLAS kernels nnumba's copy loads: ``NNUMBA_BLAS_CORETYPE`` where set;
    else ``SkylakeX`` where the CPU has AVX-512 (F, DQ, BW, VL), which numba's own
    code here already uses; else None, and OpenBLAS detects the CPU itself."""
    chosen = os.environ.get("NNUMBA_BLAS_CORETYPE")
    if chosen:
        return chosen
    from llvmlite import binding
    features = binding.get_host_cpu_features()
    if all(features.get(f"avx512{x}") for x in ("f", "dq", "bw", "vl")):
        return "SkylakeX"
    return None


def describe() -> str:
    """What runs nnumba's GEMMs, for ``nnumba info`` and the benchmark reports."""
    if _addresses() is None:
        return "numpy's matmul (the scipy-openblas32 wheel is missing)"
    core = f" ({_core[0]} kernels)" if _core else ""
    return f"own single-threaded OpenBLAS{core}, split over numba's threads"


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


@intrinsic
def _cblas_gemv(typingctx, fn, trans, m, n, alpha, a, lda, x, beta, y):
    """cblas_?gemv(RowMajor, trans, m, n, alpha, a, lda, x, 1, beta, y, 1), the function
    at address ``fn``, the arrays at addresses a, x, y."""
    signature = types.void(fn, trans, m, n, alpha, a, lda, x, beta, y)

    def codegen(context, builder, sig, args):
        i32, ptr = ir.IntType(32), ir.IntType(8).as_pointer()
        real = context.get_value_type(sig.args[4])
        fnty = ir.FunctionType(ir.VoidType(), [i32] * 4 + [real, ptr, i32, ptr, i32, real,
                                                           ptr, i32])
        f, trans, m, n, alpha, a, lda, x, beta, y = args
        one = ir.Constant(i32, 1)
        builder.call(builder.inttoptr(f, fnty.as_pointer()),
                     [ir.Constant(i32, 101), builder.trunc(trans, i32), builder.trunc(m, i32),
                      builder.trunc(n, i32), alpha, builder.inttoptr(a, ptr),
                      builder.trunc(lda, i32), builder.inttoptr(x, ptr), one, beta,
                      builder.inttoptr(y, ptr), one])
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
def _vector_block(fn, mat, trans, x, y, beta, p, parts):
    """Slice p of ``parts`` of y = op(mat) @ x (+ beta y): rows of mat, or columns with
    the transpose."""
    rows, cols = mat.shape
    size = y.itemsize
    # signed addresses: numba types uint64 + int64 as a float
    pm, px, py = np.int64(mat.ctypes.data), np.int64(x.ctypes.data), np.int64(y.ctypes.data)
    m, n = rows, cols
    if trans == _NO_TRANS:
        i0, i1 = p * rows // parts, (p + 1) * rows // parts
        pm += i0 * cols * size
        m = i1 - i0
    else:
        i0, i1 = p * cols // parts, (p + 1) * cols // parts
        pm += i0 * size
        n = i1 - i0
    py += i0 * size
    if m and n:
        _cblas_gemv(fn, trans, m, n, y.dtype.type(1), pm, max(cols, 1), px,
                    y.dtype.type(beta), py)


@njit(parallel=True, cache=True)
def _gemv_split(fn, mat, trans, x, y, beta, parts):
    for p in prange(parts):
        _vector_block(fn, mat, trans, x, y, beta, p, parts)


@njit(cache=True)
def _gemm_alone(fn, a, ta, b, tb, c, beta):
    _block(fn, a, ta, b, tb, c, beta, 0, 1, False)


@njit(parallel=True, cache=True, fastmath=True)
def _column(a, x, y, beta):
    """y[i] = a[i] . x (+ beta y[i]), every row summed in the same order: a sample's
    output then does not depend on where it sits in the batch (BLAS's GEMV sums the
    rows at the edge of its blocks in another order, 1 ulp apart)."""
    for i in prange(a.shape[0]):
        s = y.dtype.type(0)
        for k in range(a.shape[1]):
            s += a[i, k] * x[k]
        y[i] = s + y.dtype.type(beta) * y[i] if beta else s


def address(dtype):
    """The address of nnumba's own single-threaded ?gemm for ``dtype`` (float32 or
    float64), for kernels that run a GEMM on each of their threads
    (:func:`gemm_in_thread`); None without the library."""
    addresses = _addresses()
    return None if addresses is None else addresses[np.dtype(dtype) == np.float64]


@njit(cache=True)
def gemm_in_thread(fn, a, b, c, beta=0.0):
    """c = a @ b (+ beta c) on the calling thread, all three C-contiguous; fn from
    :func:`address`."""
    _block(fn, a, _NO_TRANS, b, _NO_TRANS, c, beta, 0, 1, False)


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


_DOUBLE = {np.dtype(np.float32): False, np.dtype(np.float64): True}  # native byte order


def gemm(a, b, out, accumulate=False):
    """out = a @ b, or out += a @ b; returns out."""
    # (called ~5 times a training step: the checks compare dtypes, not dtype with type)
    addresses = _lib[0] if _lib else _addresses()
    double = _DOUBLE.get(out.dtype)
    ops = (_operand(a), _operand(b))
    if addresses is None or None in ops or double is None or not out.flags.c_contiguous \
            or a.dtype != out.dtype or b.dtype != out.dtype:
        if accumulate:
            out += a @ b
        else:
            np.matmul(a, b, out=out)
        return out
    (a, ta), (b, tb) = ops
    beta = 1.0 if accumulate else 0.0
    m, n = out.shape
    if n == 1 and m > 1 and ta == _NO_TRANS:   # one output per sample (a regressor's)
        _column(a, b.reshape(-1), out.reshape(-1), beta)
        return out
    if a.size and b.size and (m == 1 or n == 1):
        # out's one row is op(b).T @ a's row; its one column is op(a) @ b's column.
        # Either way the vector's elements lie contiguous, as does out.
        mat, trans, x = (b, _TRANS if tb == _NO_TRANS else _NO_TRANS, a) if m == 1 \
            else (a, ta, b)
        fn, y = addresses[2 + double], out.reshape(-1)
        # (numba's get_num_threads takes a lock: asked only where it decides)
        if max(a.size, b.size) < _SPLIT or (parts := get_num_threads()) < 2:
            _vector_block(fn, mat, trans, x, y, beta, 0, 1)
        else:
            _gemv_split(fn, mat, trans, x, y, beta, parts)
        return out
    if ta == _NO_TRANS and tb == _TRANS and m <= FEW_ROWS:  # a few samples' rows
        few_rows_product(a, b, out, beta)
        return out
    fn = addresses[double]
    if m * n * a.size // max(m, 1) < _SPLIT or (parts := get_num_threads()) < 2:
        _gemm_alone(fn, a, ta, b, tb, out, beta)
    else:  # split the longer side of out, so that each block stays a real GEMM
        _gemm_split(fn, a, ta, b, tb, out, beta, parts, m > n)
    return out


stamp(globals())  # the disk cache follows every kernel source
