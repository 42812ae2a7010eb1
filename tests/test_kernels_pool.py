"""Pooling kernels against a plain NumPy reference: forward, backward with
overlapping windows, first-maximum ties; fused ReLU + max-pool equals ReLU then
max-pool, forward and backward."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnumba.kernels.cpu import pool as K
from nnumba.kernels.geometry import pool2d_output_shape


def ref_maxpool(x, k, s):
    """out, argmax (flat i*W + j, first maximum in row-major window order)."""
    (kh, kw), (sh, sw) = k, s
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.empty((N, C, Ho, Wo), x.dtype)
    am = np.empty((N, C, Ho, Wo), np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    win = x[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    f = int(np.argmax(win))             # numpy: first occurrence
                    out[n, c, i, j] = win.flat[f]
                    am[n, c, i, j] = (i * sh + f // kw) * W + j * sw + f % kw
    return out, am


def ref_scatter(dy, am, shape):
    dx = np.zeros(shape, np.float64)
    N, C = shape[:2]
    for n in range(N):
        for c in range(C):
            np.add.at(dx[n, c].reshape(-1), am[n, c].reshape(-1), dy[n, c].reshape(-1))
    return dx


def ref_avgpool(x, k, s):
    (kh, kw), (sh, sw) = k, s
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.empty((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].mean(axis=(2, 3))
    return out


def ref_avgpool_backward(dy, k, s, shape):
    (kh, kw), (sh, sw) = k, s
    dx = np.zeros(shape)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            dx[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += dy[:, :, i, j, None, None] / (kh * kw)
    return dx


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))     # stride < kernel: overlap
    H, W = draw(st.integers(kh, 11)), draw(st.integers(kw, 11))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    itype = draw(st.sampled_from([np.int32, np.int64]))
    ties = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    if ties:      # few distinct values, zeros and negatives: many ties, relu ties at 0
        x = rng.integers(-2, 3, (N, C, H, W)).astype(dtype)
    else:
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
    return x, (kh, kw), (sh, sw), itype, rng


def buffers(x, k, s, itype):
    Ho, Wo = pool2d_output_shape(x.shape[2], x.shape[3], k, s)
    shape = x.shape[:2] + (Ho, Wo)
    return np.full(shape, np.nan, x.dtype), np.full(shape, -7, itype)


@settings(max_examples=25, deadline=None)
@given(pool_case())
def test_maxpool_forward_backward(case):
    x, k, s, itype, rng = case
    out, am = buffers(x, k, s, itype)
    K.maxpool2d_forward(x, k, s, out, am)
    ref_out, ref_am = ref_maxpool(x, k, s)
    assert np.array_equal(out, ref_out)
    assert np.array_equal(am, ref_am)                 # ties: the first maximum
    dy = rng.standard_normal(out.shape).astype(x.dtype)
    dx = np.full(x.shape, np.nan, x.dtype)
    K.maxpool2d_backward(dy, am, dx)
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    assert np.allclose(dx, ref_scatter(dy, ref_am, x.shape), rtol=tol, atol=tol)


@settings(max_examples=25, deadline=None)
@given(pool_case())
def test_fused_relu_maxpool_equals_relu_then_maxpool(case):
    x, k, s, itype, rng = case
    out, am = buffers(x, k, s, itype)
    K.relu_maxpool2d_forward(x, k, s, out, am)
    r = np.maximum(x, 0)
    out2, am2 = buffers(x, k, s, itype)
    K.maxpool2d_forward(r, k, s, out2, am2)
    assert np.array_equal(out, out2) and np.array_equal(am, am2)
    ref_out, ref_am = ref_maxpool(r, k, s)
    assert np.array_equal(out, ref_out) and np.array_equal(am, ref_am)
    # backward: maxpool backward, then relu backward (x > 0)
    dy = rng.standard_normal(out.shape).astype(x.dtype)
    dx = np.full(x.shape, np.nan, x.dtype)
    K.relu_maxpool2d_backward(dy, am, out, dx)
    d_r = np.empty_like(x)
    K.maxpool2d_backward(dy, am2, d_r)
    assert np.array_equal(dx, np.where(x > 0, d_r, 0).astype(x.dtype))


@settings(max_examples=25, deadline=None)
@given(pool_case())
def test_avgpool_forward_backward(case):
    x, k, s, _, rng = case
    out, _ = buffers(x, k, s, np.int32)
    K.avgpool2d_forward(x, k, s, out)
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    assert np.allclose(out, ref_avgpool(x, k, s), rtol=tol, atol=tol)
    dy = rng.standard_normal(out.shape).astype(x.dtype)
    dx = np.full(x.shape, np.nan, x.dtype)
    K.avgpool2d_backward(dy, k, s, dx)
    assert np.allclose(dx, ref_avgpool_backward(dy, k, s, x.shape), rtol=tol, atol=tol)
    # adjoint: <avg(x), dy> = <x, avg_backward(dy)>, up to rounding, which scales
    # with the sum of |terms| (the sums may nearly cancel)
    lhs = np.vdot(out.astype(np.float64), dy)
    rhs = np.vdot(x.astype(np.float64), dx)
    scale = np.vdot(np.abs(out.astype(np.float64)), np.abs(dy.astype(np.float64)))
    assert abs(lhs - rhs) <= tol * scale


def test_ties_pick_first_in_row_major_order():
    # window 2x2 of equal values at (0,1) and (1,0): row-major first is (0,1)
    x = np.array([[[[0.0, 5.0], [5.0, 1.0]]]])
    out, am = np.empty((1, 1, 1, 1)), np.empty((1, 1, 1, 1), np.int32)
    K.maxpool2d_forward(x, (2, 2), (2, 2), out, am)
    assert out.item() == 5.0 and am.item() == 1
    # all-negative window under ReLU: output 0, argmax the first position, no gradient
    xn = -np.ones((1, 1, 3, 3))
    K.relu_maxpool2d_forward(xn, (3, 3), (3, 3), out, am)
    assert out.item() == 0.0 and am.item() == 0
    dx = np.full_like(xn, np.nan)
    K.relu_maxpool2d_backward(np.ones((1, 1, 1, 1)), am, out, dx)
    assert not dx.any()


def test_overlapping_windows_accumulate():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 9.0                                   # the max of all four 2x2 windows
    out, am = np.empty((1, 1, 2, 2)), np.empty((1, 1, 2, 2), np.int64)
    K.maxpool2d_forward(x, (2, 2), (1, 1), out, am)
    assert (am == 4).all() and (out == 9.0).all()
    dx = np.full_like(x, np.nan)
    K.maxpool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), am, dx)
    expect = np.zeros((3, 3))
    expect[1, 1] = 10.0
    assert np.array_equal(dx[0, 0], expect)


def test_floor_output_size_and_untouched_border():
    x = np.arange(2 * 7 * 8, dtype=np.float64).reshape(1, 2, 7, 8)
    assert pool2d_output_shape(7, 8, (3, 3)) == (2, 2)
    out, am = np.empty((1, 2, 2, 2)), np.empty((1, 2, 2, 2), np.int32)
    K.maxpool2d_forward(x, 3, 3, out, am)
    ref_out, ref_am = ref_maxpool(x, (3, 3), (3, 3))
    assert np.array_equal(out, ref_out) and np.array_equal(am, ref_am)
    dx = np.full_like(x, np.nan)
    K.maxpool2d_backward(np.ones_like(out), am, dx)
    assert dx[0, :, 6, :].sum() == 0 and dx[0, :, :, 6:].sum() == 0 and dx.sum() == 8


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool1d_is_the_2d_kernel_on_a_height_1_view(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 1, 11)).astype(dtype)
    k, s = (1, 3), (1, 2)
    out, am = np.empty((2, 3, 1, 5), dtype), np.empty((2, 3, 1, 5), np.int64)
    K.maxpool2d_forward(x, k, s, out, am)
    ref_out, ref_am = ref_maxpool(x, k, s)
    assert np.array_equal(out, ref_out) and np.array_equal(am, ref_am)
    dy = rng.standard_normal(out.shape).astype(dtype)
    dx = np.empty_like(x)
    K.maxpool2d_backward(dy, am, dx)
    assert np.allclose(dx, ref_scatter(dy, ref_am, x.shape), atol=1e-6)
    K.relu_maxpool2d_forward(x, k, s, out, am)
    assert np.array_equal(out, np.maximum(ref_out, 0))
    K.relu_maxpool2d_backward(dy, am, out, dx)
    avg = np.empty((2, 3, 1, 5), dtype)
    K.avgpool2d_forward(x, k, s, avg)
    assert np.allclose(avg, ref_avgpool(x, k, s), atol=1e-6)
    K.avgpool2d_backward(dy, k, s, dx)
    assert np.allclose(dx, ref_avgpool_backward(dy, k, s, x.shape), atol=1e-6)


def test_lecture_cnn_pool_shapes():
    rng = np.random.default_rng(5)
    for shape, k in (((4, 32, 24, 24), 3), ((4, 64, 4, 4), 2)):
        x = rng.standard_normal(shape).astype(np.float32)
        out, am = buffers(x, (k, k), (k, k), np.int32)
        K.relu_maxpool2d_forward(x, k, k, out, am)
        ref_out, ref_am = ref_maxpool(np.maximum(x, 0), (k, k), (k, k))
        assert np.array_equal(out, ref_out) and np.array_equal(am, ref_am)


def test_average_pools_of_values_near_the_float32_maximum_stay_finite():
    # Their means are finite: a float32 sum of the window before dividing was inf.
    from nnumba.layers.adaptive_pool import AdaptiveAvgPool2d
    from nnumba.layers.pool import AvgPool2d
    x = np.full((1, 2, 4, 4), 3e38, np.float32)
    x[0, 1] = -3e38
    for layer in (AvgPool2d(2), AdaptiveAvgPool2d((1, 1))):
        y = layer.forward(x)
        assert np.isfinite(y).all(), type(layer).__name__
        assert np.allclose(y[0, 0], 3e38, rtol=1e-6) and np.allclose(y[0, 1], -3e38, rtol=1e-6)
        dx = layer.backward(np.full(y.shape, 3e38, np.float32))
        assert np.isfinite(dx).all()
