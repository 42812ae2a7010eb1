"""Tanh against float64 np.tanh: within 1e-6 relative for every |x| (no cancellation
near 0), exact zeros with the input's sign, the same value wherever an element sits
in the array (vector lanes and the scalar tail must agree), and a backward that is
the derivative (finite differences, and 1/cosh^2)."""
import numpy as np
import pytest

from nnumba.layers import Tanh

DTYPES = [np.float32, np.float64]
# The points the issue names, and a subnormal of each dtype (set in magnitudes()).
NAMED = [0.0, 1e-30, 1e-8, 1e-4, 0.5, 1.0, 10.0, 20.0, 1e4]


def magnitudes(dtype):
    """|x| from the smallest subnormal to 1e4: the named points, subnormals, and a
    dense log grid (many points per decade, so no stretch of |x| is skipped)."""
    info = np.finfo(dtype)
    low = np.log10(float(info.smallest_subnormal))
    grid = np.logspace(low, 4, 60_001)
    subnormals = info.smallest_subnormal * np.array([1, 2, 3, 1000, 2**20])
    return np.concatenate([NAMED, subnormals, [float(info.tiny)], grid]).astype(dtype)


def forward(dtype, x):
    return Tanh().astype(dtype).forward(np.ascontiguousarray(x, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_relative_error_against_float64_tanh(dtype):
    m = magnitudes(dtype)
    x = np.concatenate([m, -m])
    y = forward(dtype, x).astype(np.float64)
    ref = np.tanh(x.astype(np.float64))
    # Allowed: 1e-6 relative, plus half a unit in the last place of the dtype's
    # nearest value (what rounding the exact answer to the dtype may cost: it only
    # matters where the result is subnormal, whose relative spacing is coarse).
    rounding = 0.5 * np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
    err = np.abs(y - ref)
    bad = err > 1e-6 * np.abs(ref) + rounding
    assert not bad.any(), (f"{dtype.__name__}: {bad.sum()} values off, e.g. tanh({x[bad][:3]}) "
                           f"= {y[bad][:3]}, float64 says {ref[bad][:3]}")
    if dtype == np.float64:  # float64 keeps to a few units in the last place
        np.testing.assert_allclose(y, ref, rtol=4 * np.finfo(np.float64).eps, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_is_exact_with_its_sign(dtype):
    x = np.array([0.0, -0.0, 0.0, -0.0, 1e-8, -1e-8], dtype)
    y = forward(dtype, x)
    assert np.array_equal(y[:4], np.zeros(4)), y
    assert np.array_equal(np.signbit(y), np.signbit(np.tanh(x.astype(np.float64)))), y
    assert y[4] > 0 and y[5] < 0  # the issue's -5.96e-8 for 1e-8 had the wrong sign


VALUES = [0.0, -0.0, 1e-30, 1e-8, -1e-8, 1e-4, 0.1, -0.5, 1.0, 3.3, -10.0, 20.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_value_wherever_the_element_sits(dtype):
    """Arrays of every length from 1 to 67 (vector bodies plus every tail length),
    filled with one value: each element must equal the value's result alone."""
    for v in VALUES:
        alone = forward(dtype, np.array([v], dtype))[0]
        for n in range(1, 68):
            y = forward(dtype, np.full(n, v, dtype))
            # Compare bits: -0.0 and 0.0 differ too.
            assert np.array_equal(y.view(f"u{y.itemsize}"),
                                  np.full(n, alone, dtype).view(f"u{y.itemsize}")), (v, n, y)
    # A value among others, at every position of a batch of rows.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 67)).astype(dtype)
    y = forward(dtype, x)
    for i in range(x.shape[1]):
        single = forward(dtype, x[:1, i:i + 1].copy())[0, 0]
        assert y[0, i] == single


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_is_the_derivative(dtype):
    x = np.concatenate([[0.0, 1e-8, -1e-8, 1e-5], np.linspace(-1e-3, 1e-3, 41),
                        [0.3, -0.7, 1.5, -3.0]]).astype(dtype)[None]
    g = np.linspace(-2, 2, x.size).astype(dtype).reshape(x.shape)
    layer = Tanh().astype(dtype)
    layer.forward(x)
    dx = layer.backward(g).astype(np.float64)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    # Reference: d tanh / dx = 1 / cosh(x)^2, independent of the layer's formula.
    # 1 - y^2 loses digits where |y| nears 1 (float32 at x = 3: 1e-5 relative), so
    # the bound is relative near 0 and absolute, a few units of 1, beyond.
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(dx, g64 / np.cosh(x64) ** 2, rtol=4 * eps, atol=8 * eps)
    if dtype == np.float64:
        # Central differences of the layer's own forward (error ~h^2 + eps/h ~ 1e-10).
        h = 1e-6
        fd = (forward(dtype, x64 + h) - forward(dtype, x64 - h)) / (2 * h)
        np.testing.assert_allclose(dx, g64 * fd, rtol=1e-8, atol=1e-9)
