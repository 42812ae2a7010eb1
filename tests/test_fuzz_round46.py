"""Fuzz round 46: hostile arguments to the CPU kernel set (self.kernels.*).

Each test failed at df56f9f and passes now that the kernel refuses the call with an
nnumba error (or, where the call has a meaning, computes it correctly).  Calls
that would corrupt the heap or segfault run in a subprocess; the others write
into views of larger guarded buffers, so an out-of-bounds write lands in the
guard region, where the test sees it, and never in the allocator's memory.
Run with NUMBA_NUM_THREADS=1.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnumba.kernels.cpu as k
from nnumba.errors import NnumbaError, ShapeError

G = 64  # guard elements on each side of a view


def guarded(values, guard=G):
    """(view holding values, its buffer, a copy of the buffer): the view sits
    in the middle of a NaN-filled buffer."""
    values = np.asarray(values)
    buf = np.full(values.size + 2 * guard, np.nan, values.dtype) if values.dtype.kind == "f" \
        else np.full(values.size + 2 * guard, 77, values.dtype)
    view = buf[guard:guard + values.size].reshape(values.shape)
    view[...] = values
    return view, buf, buf.copy()


def guard_intact(buf, before, view_size, guard=G):
    a = np.concatenate([buf[:guard], buf[guard + view_size:]])
    b = np.concatenate([before[:guard], before[guard + view_size:]])
    return np.array_equal(a, b, equal_nan=True)


def run_isolated(code):
    """Run code in a fresh interpreter; returns (returncode, stdout, stderr)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=600, env=env)
    return p.returncode, p.stdout, p.stderr


ISOLATED_PRELUDE = """
import numpy as np
import nnumba.kernels.cpu as k
from nnumba.errors import NnumbaError
def expect_refusal(call):
    try:
        call()
    except NnumbaError as e:
        print("REFUSED", type(e).__name__, e)
    except Exception as e:
        print("BARE", type(e).__name__, e)
    else:
        print("ACCEPTED")
"""


def assert_refused_in_subprocess(body):
    rc, out, err = run_isolated(ISOLATED_PRELUDE + textwrap.dedent(body))
    assert rc == 0, f"the process died (exit status {rc}): {err[-500:]}"
    assert "REFUSED" in out, f"not refused with an nnumba error: {out[-300:]} {err[-300:]}"


# ---------------------------------------------------------------- F1 activations
UNARY = ["relu_forward", "tanh_forward", "sigmoid_forward", "threshold_forward"]
BINARY = ["relu_backward", "tanh_backward", "sigmoid_backward"]


@pytest.mark.parametrize("name", UNARY + BINARY)
def test_activation_kernel_with_short_output_refuses_and_writes_nothing_past_it(name):
    # docs/plugins.md: the elementwise kernels (the activations, fill, scale, multiply,
    # accumulate) take flat arrays of one size, "a ShapeError otherwise"
    x = np.linspace(-2, 2, 10).astype(np.float32)
    out, buf, before = guarded(np.zeros(5, np.float32))
    args = (x,) if name in UNARY else (np.full(10, 0.5, np.float32), x)
    with pytest.raises(ShapeError):
        getattr(k, name)(*args, out)
    assert guard_intact(buf, before, out.size), "wrote past the end of the output"


@pytest.mark.parametrize("name", UNARY + BINARY)
def test_activation_kernel_on_2d_arrays_gives_shape_error(name):
    # today a numba TypingError, or (threshold_forward) a SystemError "returned a
    # result with an exception set" after which the process aborted later in pytest:
    # run apart
    args = "x," if name in UNARY else "x, x.copy(),"
    assert_refused_in_subprocess(f"""
        x = np.ones((3, 4), np.float32)
        try:
            k.{name}({args} np.empty((3, 4), np.float32))
        except NnumbaError as e:
            print("REFUSED" if type(e).__name__ == "ShapeError" else "OTHER", e)
        except Exception as e:
            print("BARE", type(e).__name__)
        else:
            print("ACCEPTED")
    """)


def test_relu_forward_short_output_corrupts_heap_in_subprocess():
    # the fuzz's worst case: a one-element y for a 4M-element x aborts the process
    assert_refused_in_subprocess("""
        x = np.ones(1 << 22, np.float32); y = np.empty(1, np.float32)
        expect_refusal(lambda: k.relu_forward(x, y))
    """)


# ---------------------------------------------------------------- F2 sgd_step
def test_sgd_step_with_short_velocity_refuses_and_writes_nothing_past_it():
    p = np.ones(10, np.float32)
    g = np.ones(10, np.float32)
    v, buf, before = guarded(np.zeros(4, np.float32))
    with pytest.raises(ShapeError):
        k.sgd_step(p, g, v, 0.1, 0.9, 0.0)
    assert guard_intact(buf, before, v.size)


def test_sgd_step_with_short_grads_does_not_kill_the_process():
    assert_refused_in_subprocess("""
        p = np.ones(1 << 20, np.float32); g = np.ones(3, np.float32); v = np.zeros(3, np.float32)
        expect_refusal(lambda: k.sgd_step(p, g, v, 0.1, 0.9, 0.0))
    """)


# ---------------------------------------------------------------- F3 loss labels / shapes
def test_softmax_cross_entropy_label_out_of_range_is_refused_not_written_past_dl_dz():
    z = np.zeros((2, 3))
    labels = np.array([0, 5])          # 5 is not in [0, 3)
    losses = np.empty(2)
    dl_dz, buf, before = guarded(np.zeros((2, 3)))
    with pytest.raises(NnumbaError):
        k.softmax_cross_entropy(z, labels, 1.0, losses, dl_dz)
    assert guard_intact(buf, before, dl_dz.size), "dl_dz[1, 5] -= scale landed past dl_dz"


def test_softmax_cross_entropy_huge_label_does_not_segfault():
    assert_refused_in_subprocess("""
        z = np.zeros((2, 3)); lab = np.array([0, 1 << 40]); L = np.empty(2); d = np.empty((2, 3))
        expect_refusal(lambda: k.softmax_cross_entropy(z, lab, 1.0, L, d))
    """)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "squared_error", "logistic", "hinge"])
def test_loss_kernel_with_short_gradient_refuses_and_writes_nothing_past_it(name):
    rng = np.random.default_rng(0)
    if name in ("softmax_cross_entropy", "squared_error"):
        a = rng.standard_normal((5, 4))
        b = np.zeros(5, np.int64) if name == "softmax_cross_entropy" else rng.standard_normal((5, 4))
        grad, buf, before = guarded(np.zeros((4, 4)))    # one row short
    else:
        a, b = rng.standard_normal(5), np.ones(5)
        grad, buf, before = guarded(np.zeros(4))          # one sample short
    args = (a, b, 1.0) if name != "hinge" else (a, b, 1.0, 1.0)
    with pytest.raises(ShapeError):
        getattr(k, name)(*args, np.empty(5), grad)
    assert guard_intact(buf, before, grad.size)


def test_softmax_cross_entropy_with_dl_dz_aliasing_z_is_refused_or_correct():
    # docs: outputs other than the elementwise kernels' must not overlap their inputs;
    # the kernel writes exp(z - m) into dl_dz while it still reads z: losses are wrong
    rng = np.random.default_rng(10)
    z = rng.standard_normal((4, 5)) * 3
    labels = np.array([0, 3, 1, 4])
    ref = np.log(np.exp(z).sum(1)) - z[np.arange(4), labels]
    zz, losses = z.copy(), np.empty(4)
    try:
        k.softmax_cross_entropy(zz, labels, 1.0, losses, zz)
    except ShapeError:
        return
    np.testing.assert_allclose(losses, ref, rtol=1e-10)


# ---------------------------------------------------------------- F4 gather_rows
@pytest.mark.parametrize("rows,width", [(2, 3), (300, 256)])
def test_gather_rows_index_out_of_range_is_an_nnumba_error_at_every_size(rows, width):
    # small: numpy's bare IndexError (np.take); from 65536 elements on: the numba loop,
    # which reads at src[1 << 40] and segfaults
    assert_refused_in_subprocess(f"""
        src = np.ones((4, {width}), np.float32); idx = np.zeros({rows}, np.int64); idx[1] = 1 << 40
        dst = np.empty(({rows}, {width}), np.float32)
        expect_refusal(lambda: k.gather_rows(src, idx, dst))
    """)


# ---------------------------------------------------------------- F5 pool / conv arguments
def test_maxpool2d_backward_argmax_out_of_plane_does_not_segfault():
    assert_refused_in_subprocess("""
        dy = np.ones((1, 1, 2, 2), np.float32)
        am = np.array([[[[0, 1], [2, 1 << 30]]]], np.int32)
        dx = np.empty((1, 1, 4, 4), np.float32)
        expect_refusal(lambda: k.maxpool2d_backward(dy, am, dx))
    """)


def test_conv2d_forward_with_out_of_another_batch_size_does_not_corrupt_memory():
    assert_refused_in_subprocess("""
        x = np.ones((2, 1, 28, 28), np.float32); w = np.ones((4, 1, 5, 5), np.float32)
        out = np.empty((1, 4, 24, 24), np.float32)
        expect_refusal(lambda: k.conv2d_forward(x, w, None, 1, 0, out))
    """)


@pytest.mark.parametrize("name", ["maxpool2d_forward", "relu_maxpool2d_forward"])
def test_maxpool_with_output_one_column_short_refuses_and_writes_nothing_past_it(name):
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32)
    out, buf, before = guarded(np.zeros((1, 2, 3, 2), np.float32), guard=400)   # (3, 3) expected
    am, abuf, abefore = guarded(np.zeros((1, 2, 3, 2), np.int32), guard=400)
    with pytest.raises(ShapeError):
        getattr(k, name)(x, 2, 2, out, am)
    assert guard_intact(buf, before, out.size, 400)
    assert guard_intact(abuf, abefore, am.size, 400)


@pytest.mark.parametrize("stride,pad", [(0, 0), (-1, 0), (1, -3), (True, 0)])
def test_conv2d_forward_rejects_nonpositive_stride_and_negative_pad(stride, pad):
    # stride 0 and pad -3 are accepted silently (pad -3 reads 3 rows past x); stride -1
    # says "out of memory"; True is taken as stride 1
    assert_refused_in_subprocess(f"""
        x = np.ones((2, 1, 28, 28), np.float32); w = np.ones((4, 1, 5, 5), np.float32)
        out = np.empty((2, 4, 24, 24), np.float32)
        expect_refusal(lambda: k.conv2d_forward(x, w, None, {stride!r}, {pad!r}, out))
    """)


@pytest.mark.parametrize("kernel,stride", [(2, 0), (0, 2), (2, -1)])
def test_pools_reject_nonpositive_kernel_or_stride_with_a_shape_error(kernel, stride):
    # today: MemoryError "failed in a parallel block: out of memory, or ..."
    x = np.ones((1, 1, 8, 8), np.float32)
    with pytest.raises(NnumbaError):
        k.avgpool2d_forward(x, kernel, stride, np.empty((1, 1, 4, 4), np.float32))


def test_adaptive_avgpool_output_with_more_planes_than_input_is_refused():
    # y (2, ...) for x (1, ...): reads x's second image past its end, no error
    x, buf, before = guarded(np.ones((1, 1, 4, 4), np.float32))
    y = np.zeros((2, 1, 2, 2), np.float32)
    with pytest.raises(ShapeError):
        k.adaptive_avgpool2d_forward(x, y)


# ---------------------------------------------------------------- F6 layout: silent garbage
def _pool_ref(x, kk):
    N, C, H, W = x.shape
    return x.reshape(N, C, H // kk, kk, W // kk, kk).max((3, 5))


def test_maxpool2d_forward_into_fortran_ordered_out_is_refused_or_correct():
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 8))
    out = np.empty((2, 3, 3, 4)[::-1]).T         # F-ordered (N, C, Ho, Wo) view
    am = np.empty((2, 3, 3, 4), np.int32)
    try:
        k.maxpool2d_forward(x, 2, 2, out, am)
    except NnumbaError:
        return
    np.testing.assert_allclose(out, _pool_ref(x, 2))


def test_conv2d_forward_into_transposed_out_is_refused_or_correct():
    sig = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 16, 5, 6))
    w = rng.standard_normal((3, 16, 3, 3))
    ref = np.stack([sum(sig.correlate(x[0, c], w[d, c], mode="valid") for c in range(16))
                    for d in range(3)])[None]
    out = np.empty((1, 3, 4, 3)).swapaxes(2, 3)    # (1, 3, 3, 4), not C-contiguous
    try:
        k.conv2d_forward(x, w, None, 1, 0, out)
    except NnumbaError:
        return
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- F7 dtypes: silent garbage
def test_fused_conv_pool_backward_with_float32_db_beside_float64_is_refused_or_correct():
    # one-pass path (8 filters, int32 argmax, direct convolution): a float32 db_out
    # beside float64 arrays gets wrong sums, and the process aborts later (glibc
    # "free(): invalid next size"): run apart
    rc, out, err = run_isolated(ISOLATED_PRELUDE + """
rng = np.random.default_rng(80)
x = rng.standard_normal((2, 1, 5, 27)); w = rng.standard_normal((8, 1, 3, 2))
out = np.empty((2, 8, 2, 6)); am = np.empty((2, 8, 2, 6), np.int32)
k.conv2d_relu_maxpool2d_forward(x, w, None, (1, 2), (1, 0), 2, 2, out, am)
dy = rng.standard_normal(out.shape)
ref = np.where(out > 0, dy, 0).sum((0, 2, 3))      # db: the ReLU-masked dy per channel
db32 = np.zeros(8, np.float32)
try:
    k.conv2d_relu_maxpool2d_backward(x, w, dy, am, out, (1, 2), (1, 0), np.zeros(w.shape),
                                     db32, None)
except NnumbaError as e:
    print("REFUSED", e)
else:
    print("CORRECT" if np.allclose(db32, ref, rtol=1e-5, atol=1e-5) else f"WRONG {db32} {ref}")
import gc; gc.collect(); [np.empty(n) for n in range(1, 2000)]
""")
    assert rc == 0, f"the process died (exit status {rc}): {out[-300:]} {err[-300:]}"
    assert "REFUSED" in out or "CORRECT" in out, out[-500:]


def test_sigmoid_forward_of_uint8_input_is_refused_or_correct():
    x = np.array([0, 1, 2, 200], np.uint8)
    y = np.empty(4, np.float32)
    try:
        k.sigmoid_forward(x, y)
    except NnumbaError:
        return
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)


# ---------------------------------------------------------------- F8 error classes
def test_read_only_output_gives_an_nnumba_error_not_a_numba_typing_error():
    y = np.empty(4, np.float32)
    y.flags.writeable = False
    with pytest.raises(NnumbaError):
        k.relu_forward(np.ones(4, np.float32), y)


@pytest.mark.parametrize("call", [
    lambda: k.add_bias(np.zeros((3, 4)), np.zeros(5)),
    lambda: k.add_bias(np.zeros(12), np.zeros(4)),                 # numba TypingError today
    lambda: k.matmul(np.zeros((3, 4)), np.zeros((5, 2)), np.zeros((3, 2))),
    lambda: k.matmul(np.zeros(6), np.zeros((6, 2)), np.zeros((1, 2))),   # IndexError today
], ids=["add_bias_width", "add_bias_1d", "matmul_inner", "matmul_1d"])
def test_dense_kernels_shape_errors_are_shape_errors_as_on_cuda(call):
    # the CUDA set raises ShapeError (flat.check_bias); the CPU set a plain ValueError
    # (or a numba TypingError / IndexError for a wrong ndim)
    with pytest.raises(ShapeError):
        call()
