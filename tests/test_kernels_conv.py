"""Convolution kernels against SciPy, adjoint identities, finite differences and
exact small cases; every strategy (direct loops, im2col + GEMM, Winograd for 3 x 3
and 5 x 5) on every case it takes."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.signal import correlate

from nnumba.kernels.cpu import conv as K
from nnumba.kernels.cpu import conv_direct, conv_gemm, conv_winograd
from nnumba.kernels.geometry import conv2d_output_shape

TOL = {np.float32: 1e-4, np.float64: 1e-10}


def reference_forward(x, w, b, stride, pad):
    """Per (n, d): sum over c of scipy correlate(xpad[n, c], w[d, c], 'valid'),
    strided, plus b[d]."""
    (sh, sw), (ph, pw) = stride, pad
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, D = x.shape[0], w.shape[0]
    planes = []
    for n in range(N):
        for d in range(D):
            acc = sum(correlate(xp[n, c], w[d, c].astype(np.float64), mode="valid")
                      for c in range(x.shape[1]))
            planes.append(acc[::sh, ::sw] + b[d])
    return np.array(planes).reshape((N, D) + planes[0].shape)


def reference_backward(x, w, dy, stride, pad):
    """Loop-by-loop scatter of dy through every window: (dx, dw, db) in float64."""
    (sh, sw), (ph, pw) = stride, pad
    N, C, H, W = x.shape
    D, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            win = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]          # (N, C, kh, kw)
            g = dy[:, :, i, j].astype(np.float64)                           # (N, D)
            dw += np.einsum("nd,nckl->dckl", g, win)
            dxp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += np.einsum("nd,dckl->nckl", g, w)
    return dxp[:, :, ph:ph + H, pw:pw + W], dw, dy.astype(np.float64).sum(axis=(0, 2, 3))


def rel_err(a, ref):
    return np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-30)


def out_shape(x, w, stride, pad):
    return (x.shape[0], w.shape[0]) + conv2d_output_shape(x.shape[2], x.shape[3],
                                                            w.shape[2:], stride, pad)


def run_forward(strategy, x, w, b, stride, pad):
    out = np.full(out_shape(x, w, stride, pad), np.nan, x.dtype)    # written fully?
    (sh, sw), (ph, pw) = stride, pad
    if strategy == "direct":
        conv_direct.forward_direct(x, w, b, sh, sw, ph, pw, out)
    elif strategy == "gemm":
        conv_gemm.forward_gemm(x, w, b, sh, sw, ph, pw, out)
    elif strategy == "images":
        conv_gemm.forward_gemm_images(x, w, b, sh, sw, ph, pw, out)
    elif strategy == "winograd":
        conv_winograd.forward_winograd(x, w, b, ph, pw, out)
    else:
        K.conv2d_forward(x, w, b, stride, pad, out)
    return out


def run_weight(strategy, x, dy, stride, pad, dw, db):
    (sh, sw), (ph, pw) = stride, pad
    if strategy == "direct":
        conv_direct.weight_direct(x, dy, sh, sw, ph, pw, dw, db)
    elif strategy == "gemm":
        conv_gemm.weight_gemm(x, dy, sh, sw, ph, pw, dw, db)
    else:
        K.conv2d_backward_weight(x, dy, stride, pad, dw, db)


@st.composite
def conv_case(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 12))
    W = draw(st.integers(max(1, kw - 2 * pw), 12))
    N, C, D = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 6))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**31 - 1))
    return N, C, H, W, D, (kh, kw), (sh, sw), (ph, pw), dtype, seed


def make(case):
    N, C, H, W, D, (kh, kw), stride, pad, dtype, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((D, C, kh, kw)).astype(dtype)
    b = rng.standard_normal(D).astype(dtype)
    return x, w, b, stride, pad, dtype, rng


@settings(max_examples=25, deadline=None)
@given(conv_case())
def test_forward_matches_scipy(case):
    x, w, b, stride, pad, dtype, _ = make(case)
    ref = reference_forward(x, w, b, stride, pad)
    for strategy in ("auto", "direct", "gemm", "images"):
        out = run_forward(strategy, x, w, b, stride, pad)
        assert out.dtype == dtype
        assert rel_err(out, ref) < TOL[dtype], strategy


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 11),
       st.integers(1, 11), st.integers(0, 2), st.integers(0, 2), st.sampled_from([3, 5]),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31 - 1))
def test_winograd_forward_matches_scipy(N, C, D, H, W, ph, pw, k, dtype, seed):
    """3 x 3 and 5 x 5, stride 1, odd and even output sizes (a last half tile), any
    padding."""
    assume(H + 2 * ph >= k and W + 2 * pw >= k)
    x, w, b, stride, pad, dtype, _ = make((N, C, H, W, D, (k, k), (1, 1), (ph, pw), dtype,
                                           seed))
    out = run_forward("winograd", x, w, b, stride, pad)
    assert out.dtype == dtype
    assert rel_err(out, reference_forward(x, w, b, stride, pad)) < TOL[dtype]


@pytest.mark.parametrize("r", [3, 5])
def test_winograd_transforms_give_a_row_of_correlations_exactly(r):
    """A^T [(G g) * (B^T d)] = (d . g at offsets 0 and 1), as an identity in g and d:
    checked on the basis vectors, in exact float64 (B^T and A^T are integers)."""
    bt, g_mat, at = conv_winograd.transforms(r)
    assert np.array_equal(bt, np.round(bt)) and np.array_equal(at, np.round(at))
    for i in range(r):
        for j in range(r + 1):
            g, d = np.eye(r)[i], np.eye(r + 1)[j]
            want = [d[o:o + r] @ g for o in range(2)]
            np.testing.assert_allclose(at @ ((g_mat @ g) * (bt @ d)), want, atol=1e-15)


def test_the_forward_takes_winograd_where_im2col_would_run_on_a_batch():
    """AlexNet's conv3 in small: 20 channels (180 taps, past the direct kernels'),
    a 9 x 9 map; one image keeps im2col, two go by Winograd."""
    assert not K.uses_direct(20, 3, (9, 9), 1)
    assert conv_winograd.uses_winograd(2, 3, 3, 1, 1, 9, 9)
    assert not conv_winograd.uses_winograd(1, 3, 3, 1, 1, 9, 9)
    assert not conv_winograd.uses_winograd(2, 3, 3, 2, 2, 9, 9)   # strided
    assert not conv_winograd.uses_winograd(2, 7, 7, 1, 1, 9, 9)   # no transforms for 7 x 7
    x, w, b, stride, pad, dtype, _ = make((2, 20, 9, 9, 8, (3, 3), (1, 1), (1, 1), np.float32, 5))
    auto = run_forward("auto", x, w, b, stride, pad)
    np.testing.assert_array_equal(auto, run_forward("winograd", x, w, b, stride, pad))
    assert rel_err(auto, reference_forward(x, w, b, stride, pad)) < TOL[np.float32]


@settings(max_examples=25, deadline=None)
@given(conv_case())
def test_backward_matches_reference(case):
    x, w, b, stride, pad, dtype, rng = make(case)
    dy = rng.standard_normal(out_shape(x, w, stride, pad)).astype(dtype)
    dx_ref, dw_ref, db_ref = reference_backward(x, w, dy, stride, pad)
    dx = np.full(x.shape, np.nan, dtype)
    K.conv2d_backward_input(dy, w, stride, pad, dx)
    assert rel_err(dx, dx_ref) < TOL[dtype]
    for strategy in ("auto", "direct", "gemm"):
        dw0 = rng.standard_normal(w.shape).astype(dtype)        # accumulates: +=
        db0 = rng.standard_normal(b.shape).astype(dtype)
        dw, db = dw0.copy(), db0.copy()
        run_weight(strategy, x, dy, stride, pad, dw, db)
        assert rel_err(dw - dw0, dw_ref) < 10 * TOL[dtype], strategy
        assert rel_err(db - db0, db_ref) < 10 * TOL[dtype], strategy


@settings(max_examples=15, deadline=None)
@given(conv_case())
def test_adjoint_identities_float64(case):
    """<conv(x; w), dy> = <x, dX(dy)> = <w, dW(x, dy)> when b = 0 (linearity)."""
    x, w, _, stride, pad, _, rng = make(case)
    x, w = x.astype(np.float64), w.astype(np.float64)
    zero = np.zeros(w.shape[0])
    y = run_forward("auto", x, w, zero, stride, pad)
    dy = rng.standard_normal(y.shape)
    dx = np.empty_like(x)
    K.conv2d_backward_input(dy, w, stride, pad, dx)
    dw, db = np.zeros_like(w), np.zeros(w.shape[0])
    K.conv2d_backward_weight(x, dy, stride, pad, dw, db)
    lhs = np.vdot(y, dy)
    assert np.isclose(lhs, np.vdot(x, dx), rtol=1e-10, atol=1e-10)
    assert np.isclose(lhs, np.vdot(w, dw), rtol=1e-10, atol=1e-10)
    assert np.allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)


def test_finite_differences_float64():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    stride, pad = (2, 1), (1, 1)
    dy = rng.standard_normal(out_shape(x, w, stride, pad))

    def loss(x_, w_, b_):
        return np.vdot(run_forward("auto", x_, w_, b_, stride, pad), dy)

    dx = np.empty_like(x)
    K.conv2d_backward_input(dy, w, stride, pad, dx)
    dw, db = np.zeros_like(w), np.zeros_like(b)
    K.conv2d_backward_weight(x, dy, stride, pad, dw, db)
    eps = 1e-6
    for arr, grad, args in ((x, dx, 0), (w, dw, 1), (b, db, 2)):
        for idx in [tuple(rng.integers(0, s) for s in arr.shape) for _ in range(6)]:
            plus, minus = [x.copy(), w.copy(), b.copy()], [x.copy(), w.copy(), b.copy()]
            plus[args][idx] += eps
            minus[args][idx] -= eps
            fd = (loss(*plus) - loss(*minus)) / (2 * eps)
            assert abs(fd - grad[idx]) < 1e-6 * max(1.0, abs(fd))


def test_lecture_1d_example():
    """(0,0,0,0,1,2,3,4,4,4,4) correlated with (-1, 1) = (0,0,0,1,1,1,1,0,0,0)."""
    for dtype in (np.float32, np.float64):
        # a 1-D convolution is the 2-D one on a height-1 view
        x = np.array([0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4], dtype).reshape(1, 1, 1, 11)
        w = np.array([-1, 1], dtype).reshape(1, 1, 1, 2)
        out = np.empty((1, 1, 1, 10), dtype)
        K.conv2d_forward(x, w, np.zeros(1, dtype), 1, 0, out)
        assert out.ravel().tolist() == [0, 0, 0, 1, 1, 1, 1, 0, 0, 0]


def test_conv1d_backward_small_exact():
    x = np.array([[[[1.0, 2.0, 3.0, 4.0, 5.0]]]])
    w = np.array([[[[1.0, 10.0, 100.0]]]])
    dy = np.array([[[[1.0, 0.0, 2.0]]]])                     # Lo = 3 (stride 1, pad 0)
    dx = np.empty_like(x)
    K.conv2d_backward_input(dy, w, 1, 0, dx)
    assert dx.ravel().tolist() == [1.0, 10.0, 102.0, 20.0, 200.0]
    dw, db = np.zeros_like(w), np.zeros(1)
    K.conv2d_backward_weight(x, dy, 1, 0, dw, db)
    assert dw.ravel().tolist() == [7.0, 10.0, 13.0] and db.tolist() == [3.0]
    # stride 2, padding 1: windows over (0, 1, 2 | 2, 3, 4 | 4, 5, 0)
    out = np.empty((1, 1, 1, 3))
    K.conv2d_forward(x, w, np.array([0.5]), (1, 2), (0, 1), out)
    assert out.ravel().tolist() == [210.5, 432.5, 54.5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C,H,D", [(1, 28, 32), (32, 8, 64)])   # the lecture CNN's convs
def test_lecture_cnn_shapes(dtype, C, H, D):
    rng = np.random.default_rng(C)
    x = rng.standard_normal((5, C, H, H)).astype(dtype)
    w = rng.standard_normal((D, C, 5, 5)).astype(dtype)
    b = rng.standard_normal(D).astype(dtype)
    s, p = (1, 1), (0, 0)
    out = run_forward("auto", x, w, b, s, p)
    assert rel_err(out, reference_forward(x, w, b, s, p)) < TOL[dtype]
    dy = rng.standard_normal(out.shape).astype(dtype)
    dx_ref, dw_ref, db_ref = reference_backward(x, w, dy, s, p)
    dw, db = np.zeros_like(w), np.zeros_like(b)
    K.conv2d_backward_weight(x, dy, s, p, dw, db)
    assert rel_err(dw, dw_ref) < 10 * TOL[dtype] and rel_err(db, db_ref) < 10 * TOL[dtype]
    dx = np.empty_like(x)
    K.conv2d_backward_input(dy, w, s, p, dx)
    assert rel_err(dx, dx_ref) < TOL[dtype]


def test_strategy_choice_for_the_lecture_cnn():
    assert K._use_direct(1, 5, 5, 24, 24, 1)           # conv1: direct loops
    assert not K._use_direct(32, 5, 5, 4, 4, 1)        # conv2: im2col + GEMM


def test_workspace_reuse_does_not_leak_between_shapes():
    """Scratch buffers are shared across calls of different shapes."""
    rng = np.random.default_rng(9)
    cases = [((3, 8, 6, 6), (5, 8, 3, 3)), ((2, 4, 9, 9), (6, 4, 5, 5)), ((3, 8, 6, 6), (5, 8, 3, 3))]
    for xs, ws in cases:
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        b = rng.standard_normal(ws[0])
        out = run_forward("gemm", x, w, b, (1, 1), (1, 1))
        assert rel_err(out, reference_forward(x, w, b, (1, 1), (1, 1))) < 1e-10
    K.clear_workspace()


def _grads(x, w, dy, keep):
    """(out, dw, db, dx) of one forward and backward with ``keep`` (None: nothing kept)."""
    out = np.empty((x.shape[0], w.shape[0]) + conv2d_output_shape(
        x.shape[2], x.shape[3], w.shape[2:], 1, 0), x.dtype)
    K.conv2d_forward(x, w, None, 1, 0, out, keep=keep)
    dw, db, dx = np.zeros_like(w), np.zeros(w.shape[0], x.dtype), np.empty_like(x)
    K.conv2d_backward_weight(x, dy, 1, 0, dw, db, keep=keep)
    K.conv2d_backward_input(dy, w, 1, 0, dx, keep=keep)
    return out, dw, db, dx


@pytest.mark.parametrize("C, k", [(8, 5), (16, 3)])  # im2col (the lecture's conv2); Winograd
def test_what_a_layer_keeps_between_passes_changes_nothing_and_never_goes_stale(C, k):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, C, 8 - (5 - k), 8 - (5 - k))).astype(np.float32)
    w = rng.standard_normal((6, C, k, k)).astype(np.float32)
    dy = rng.standard_normal((5, 6, 4, 4)).astype(np.float32)
    keep = {}
    for step in range(3):  # new values in the same arrays, as a training loop's buffers
        want = _grads(x, w, dy, None)
        for got, ref in zip(_grads(x, w, dy, keep), want):
            np.testing.assert_array_equal(got, ref)
        x[...] = rng.standard_normal(x.shape) * (1e36 if step == 0 and k == 3 else 1)
        dy[...] = rng.standard_normal(dy.shape)
    # (a 3 x 3 forward of values near the float range goes by im2col and keeps its
    # columns; the next, by Winograd, must not leave them for the weight gradient)


def test_a_forward_forgets_the_dy_kept_for_the_input_gradient():
    # the kept dy outlived a new forward: an input gradient alone after it read the old
    # values of the same buffer (fuzz round 12)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 8, 8, 8)).astype(np.float32)
    w = rng.standard_normal((6, 8, 5, 5)).astype(np.float32)
    dy = rng.standard_normal((3, 6, 4, 4)).astype(np.float32)
    keep = {}
    _grads(x, w, dy, keep)
    K.conv2d_forward(x, w, None, 1, 0, np.empty((3, 6, 4, 4), np.float32), keep=keep)
    dy[...] = rng.standard_normal(dy.shape)
    got, want = np.empty_like(x), np.empty_like(x)
    K.conv2d_backward_input(dy, w, 1, 0, got, keep=keep)
    K.conv2d_backward_input(dy, w, 1, 0, want)
    np.testing.assert_array_equal(got, want)


def test_a_5x5_winograd_falls_back_where_its_transforms_would_overflow():
    """Inputs of 1e37 in a checkerboard: F(2 x 2, 5 x 5)'s input transform (weights up
    to 5, summed twice: up to 100x) would overflow float32, the direct sum does not."""
    x = np.full((2, 3, 16, 16), 1e37, np.float32)
    x[:, :, ::2, :] *= -1
    x[:, :, :, ::2] *= -1
    w = np.full((2, 3, 5, 5), 1e-6, np.float32)
    b = np.zeros(2, np.float32)
    assert conv_winograd.uses_winograd(2, 5, 5, 1, 1, 16, 16)
    out = run_forward("auto", x, w, b, (1, 1), (2, 2))
    assert np.isfinite(out).all()
    assert rel_err(out, reference_forward(x, w, b, (1, 1), (2, 2))) < TOL[np.float32]
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(run_forward("winograd", x, w, b, (1, 1), (2, 2))).all()
