"""nnumba's GEMM (its own single-threaded OpenBLAS split over numba's threads) against
numpy's matmul, for every layout the layers pass, and its fallback."""
import numpy as np
import pytest

from nnumba.kernels.cpu import blas

SHAPES = [(7, 5, 9), (1, 9, 130), (1, 900, 1000), (600, 700, 1), (1, 1, 1), (100, 784, 256), (256, 100, 64), (64, 801, 1600), (16, 300, 77), (32, 50, 3), (33, 40, 9), (2, 1, 5)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_gemm_matches_numpy_for_every_transpose_and_accumulates(dtype, m, k, n):
    rng = np.random.default_rng(m * n)
    for ta in (False, True):
        for tb in (False, True):
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
            A, B = (a.T if ta else a), (b.T if tb else b)
            want = A.astype(np.float64) @ B
            out = np.full((m, n), np.nan, dtype)
            blas.gemm(A, B, out)
            tol = 1e-4 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(want).max())
            blas.gemm(A, B, out, accumulate=True)
            np.testing.assert_allclose(out, 2 * want, rtol=tol, atol=tol * np.abs(want).max())


def test_the_library_is_nnumbas_own_copy_and_numpy_does_the_rest():
    if blas._addresses() is None:
        pytest.skip("the scipy-openblas32 wheel is not installed: numpy's matmul is used")
    a = np.arange(12.0).reshape(3, 4)[:, ::2]  # neither rows nor columns contiguous
    out = np.empty((3, 3))
    blas.gemm(a, np.ones((2, 3)), out)
    np.testing.assert_array_equal(out, a @ np.ones((2, 3)))


def test_the_kernels_follow_the_cpu_and_nnumba_blas_coretype(monkeypatch):
    from llvmlite import binding
    monkeypatch.delenv("NNUMBA_BLAS_CORETYPE", raising=False)
    avx512 = {f"avx512{x}": True for x in ("f", "dq", "bw", "vl")}
    monkeypatch.setattr(binding, "get_host_cpu_features", lambda: avx512)
    assert blas.core_type() == "SkylakeX"
    monkeypatch.setattr(binding, "get_host_cpu_features", lambda: {**avx512, "avx512bw": False})
    assert blas.core_type() is None  # OpenBLAS detects the CPU itself
    monkeypatch.setenv("NNUMBA_BLAS_CORETYPE", "Haswell")
    assert blas.core_type() == "Haswell"


def test_loading_the_copy_leaves_the_users_openblas_settings_as_they_were():
    """OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS are numpy's copy's: nnumba's copy
    loads with its own and puts the user's back."""
    import os
    import platform
    import subprocess
    import sys
    if blas._addresses() is None or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("needs the scipy-openblas32 wheel on x86-64")
    code = ("import os, numpy as np; from nnumba.kernels.cpu import blas; "
            "out = np.empty((2, 2), np.float32); blas.gemm(np.eye(2, dtype=np.float32), "
            "np.eye(2, dtype=np.float32), out); "
            "print(blas.describe(), os.environ.get('OPENBLAS_CORETYPE'), "
            "os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell", "NNUMBA_BLAS_CORETYPE": "Nehalem"}
    env.pop("OPENBLAS_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "(Nehalem kernels)" in out
    assert out.split()[-2:] == ["Haswell", "None"]


def test_a_few_rows_give_each_sample_the_same_sums_wherever_it_sits():
    """The few-rows product sums every element by the same loop: a sample's row of
    the product is bit for bit the same at any place in batches of 2 to 32."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((13, 1000)).astype(np.float32)
    sample = rng.standard_normal(1000).astype(np.float32)
    rows = []
    for m, place in ((2, 1), (5, 4), (16, 7), (32, 31)):
        x = rng.standard_normal((m, 1000)).astype(np.float32)
        x[place] = sample
        out = np.empty((m, 13), np.float32)
        blas.gemm(x, w.T, out)
        rows.append(out[place])
    for row in rows[1:]:
        np.testing.assert_array_equal(row, rows[0])
    np.testing.assert_allclose(rows[0], w.astype(np.float64) @ sample, rtol=1e-4, atol=1e-3)


def test_the_copy_stays_single_threaded_whatever_openblas_num_threads_says():
    """OPENBLAS_NUM_THREADS is numpy's copy's setting (docs audit): nnumba's copy, whose
    products are split over numba's threads, loads with one thread under any value,
    and stays at one where an MPI rank limits every loaded OpenBLAS to its share."""
    import os
    import subprocess
    import sys
    if blas._addresses() is None:
        pytest.skip("needs the scipy-openblas32 wheel")
    code = ("from nnumba.kernels.cpu import blas; blas._addresses(); "
            "get = blas._own[0].scipy_openblas_get_num_threads; print(get()); "
            "from nnumba.distributed.threads import configure_threads; "
            "configure_threads(2); print(get())")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["1", "1"]


def test_an_unknown_coretype_is_said_not_ignored():
    """NNUMBA_BLAS_CORETYPE with a name OpenBLAS does not know: it detects the CPU
    itself, and nnumba says so (a warning naming the kernels loaded) rather than
    describing kernels other than the ones asked for in silence."""
    import os
    import subprocess
    import sys
    if blas._addresses() is None:
        pytest.skip("needs the scipy-openblas32 wheel")
    code = "from nnumba.kernels.cpu import blas; blas._addresses(); print(blas.describe())"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "NNUMBA_BLAS_CORETYPE": "NoSuchCore"}, check=True)
    assert "NNUMBA_BLAS_CORETYPE='NoSuchCore': OpenBLAS loaded its" in run.stderr
    assert "NoSuchCore" not in run.stdout
