"""nnumba's GEMM (its own single-threaded OpenBLAS split over numba's threads) against
numpy's matmul, for every layout the layers pass, and its fallback."""
import numpy as np
import pytest

from nnumba.kernels.cpu import blas

SHAPES = [(7, 5, 9), (1, 9, 130), (1, 900, 1000), (600, 700, 1), (1, 1, 1), (100, 784, 256), (256, 100, 64), (64, 801, 1600)]


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
