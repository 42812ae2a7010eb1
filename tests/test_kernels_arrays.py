"""fill and gather_rows of the CPU kernel set against numpy, on both sides of the
size from which they run on every core (small arrays take numpy's own path)."""
import numpy as np
import pytest

from nnumba.kernels import cpu
from nnumba.kernels.cpu import arrays

SIZES = [1, 7, arrays._PARALLEL_FROM - 1, arrays._PARALLEL_FROM, 3 * arrays._PARALLEL_FROM + 5]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_fill_sets_every_element(size, dtype):
    a = np.random.default_rng(size).standard_normal(size).astype(dtype).reshape(size, 1)
    assert cpu.fill(a, 3) is a
    np.testing.assert_array_equal(a, np.full((size, 1), 3, dtype))


def test_fill_of_a_fortran_array_writes_the_array_itself():
    a = np.asfortranarray(np.ones((arrays._PARALLEL_FROM, 3), np.float32))
    cpu.fill(a, 0)
    assert not a.any()


@pytest.mark.parametrize("rows,features", [(3, 5), (100, 784), (1000, 1), (70, 1000)])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_gather_rows_matches_fancy_indexing(rows, features, dtype):
    rng = np.random.default_rng(rows)
    src = (rng.standard_normal((2 * rows + 3, features)) * 100).astype(dtype)
    idx = rng.permutation(len(src))[:rows].astype(np.int64)
    dst = np.full((rows, features), -1, dtype)
    assert cpu.gather_rows(src, idx, dst) is dst
    np.testing.assert_array_equal(dst, src[idx])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_all_finite_agrees_with_isfinite_on_every_kind_of_value(dtype, layout):
    """The bit test against numpy's isfinite: NaN of either sign and payload, both
    infinities, at every position, beside the largest, smallest and negative zero."""
    info = np.finfo(dtype)
    edge = np.array([info.max, -info.max, info.tiny, info.tiny / 4, -0.0, 0.0, 1, -1], dtype)
    base = np.resize(edge, (6, 9))
    if layout == "F":
        base = np.asfortranarray(base)
    elif layout == "strided":
        base = np.resize(edge, (6, 18))[:, ::2]
    assert cpu.all_finite(base) is True
    bits = {np.float16: np.uint16, np.float32: np.uint32, np.float64: np.uint64}[dtype]
    payload_nan = np.array([np.nan], dtype).view(bits) | bits(1)   # a NaN numpy did not make
    specials = [np.nan, -np.nan, np.inf, -np.inf, payload_nan.view(dtype)[0],
                -payload_nan.view(dtype)[0]]
    for value in specials:
        for i, j in [(0, 0), (2, 5), (5, 8)]:
            bad = base.copy(order="K")
            bad[i, j] = value
            assert cpu.all_finite(bad) is bool(np.isfinite(bad).all()) is False, (value, i, j)
