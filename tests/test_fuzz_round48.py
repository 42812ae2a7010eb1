"""Fuzz round 48: the CPU and CUDA kernel sets compared by differential fuzzing (valid
calls matched; ~1,750 hostile ones). Each test failed at 68252c4: float16 arrays past
the bias and elementwise kernels' checks, the CPU adaptive pool on a strided input,
the CUDA fill of a transposed array, an output overlapping its input, and a bool
where an array belongs.

CPU-side tests run in this process. CUDA-side tests need the simulator, which has to
be on before numba.cuda is imported. So, as tests/test_cuda_kernel_checks.py does,
each CUDA test's wrapper re-runs this file in a subprocess with NUMBA_ENABLE_CUDASIM=1
and selects that one test with -k. Sizes are tiny.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernel_calls import error_of, on_device

f16, f32, f64, i32, i64 = np.float16, np.float32, np.float64, np.int32, np.int64
SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
HAVE_CUDA = importlib.util.find_spec("numba_cuda") is not None
REPO = Path(__file__).resolve().parent.parent


def rnd(*shape, dtype=f32, seed=0):
    return (np.random.default_rng(seed).uniform(-1, 1, shape) + 0.01).astype(dtype)


def z(*shape, dtype=f32):
    return np.zeros(shape, dtype)


# Kernels whose checks look at shapes only. On the CPU, float16 gives numba's bare
# NotImplementedError('float16'); the CUDA set runs the call.
FLOAT16 = [
    ("add_bias", lambda: (rnd(3, 4, dtype=f16), rnd(4, dtype=f16))),
    ("add_bias_relu", lambda: (rnd(3, 4, dtype=f16), rnd(4, dtype=f16))),
    ("accumulate_bias_grad", lambda: (rnd(3, 4, dtype=f16), rnd(4, dtype=f16))),
    ("relu_backward_bias_grad", lambda: (rnd(3, 4, dtype=f16), rnd(3, 4, dtype=f16),
                                         z(3, 4, dtype=f16), z(4, dtype=f16))),
    ("scale", lambda: (rnd(6, dtype=f16), 2.0, z(6, dtype=f16))),
    ("multiply", lambda: (rnd(6, dtype=f16), rnd(6, dtype=f16), z(6, dtype=f16))),
    ("multiply", lambda: (rnd(6), rnd(6, dtype=f16), z(6))),           # one float16 input
    ("accumulate", lambda: (rnd(6, dtype=f16), rnd(6, dtype=f16))),
]


def adaptive_reference(x, out_hw):
    """PyTorch's adaptive average pool bins, in numpy."""
    N, C, H, W = x.shape
    Ho, Wo = out_hw
    y = np.empty((N, C, Ho, Wo), np.float64)
    for i in range(Ho):
        h0, h1 = (i * H) // Ho, -(-((i + 1) * H) // Ho)
        for j in range(Wo):
            w0, w1 = (j * W) // Wo, -(-((j + 1) * W) // Wo)
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def conv_reference(x, w):
    """Cross-correlation, stride 1, no pad, in numpy."""
    N, C, H, W = x.shape
    D, _, kh, kw = w.shape
    y = np.zeros((N, D, H - kh + 1, W - kw + 1), np.float64)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            y[:, :, i, j] = np.einsum("nchw,dchw->nd", x[:, :, i:i + kh, j:j + kw], w)
    return y


# ---------------------------------------------------------------- the CPU set, in process
if not SIMULATED:
    import nnumba.kernels.cpu as cpu

    @pytest.mark.parametrize("name,make", FLOAT16, ids=[f"{c[0]}-{i}" for i, c in enumerate(FLOAT16)])
    def test_cpu_float16_arrays_get_a_dtype_error(name, make):
        assert error_of(lambda: getattr(cpu, name)(*make())) == "DTypeError"

    def test_cpu_adaptive_avgpool_of_a_strided_input():
        # every other window kernel takes a non-contiguous input (outputs must be
        # C-contiguous); this one gives numba's TypingError (x.reshape in the
        # one-pixel-bin branch)
        base = rnd(1, 2, 8, 4)
        x = base[:, :, ::2]                                  # (1, 2, 4, 4), strided
        y = z(1, 2, 3, 3)
        got = error_of(lambda: cpu.adaptive_avgpool2d_forward(x, y))
        assert got in ("no error", "ShapeError"), got
        if got == "no error":
            np.testing.assert_allclose(y, adaptive_reference(x, (3, 3)), rtol=1e-5, atol=1e-6)

    def test_cpu_adaptive_avgpool_backward_of_a_strided_gradient():
        dy = rnd(1, 2, 2, 4)[:, :, :, ::2]                   # (1, 2, 2, 2), strided
        dx = z(1, 2, 4, 4)
        got = error_of(lambda: cpu.adaptive_avgpool2d_backward(dy, dx))
        assert got in ("no error", "ShapeError"), got
        if got == "no error":  # 2 x 2 bins of a 4 x 4 map: each gets dy / 4
            np.testing.assert_allclose(dx, np.repeat(np.repeat(dy, 2, 2), 2, 3) / 4, rtol=1e-6)

    def test_cpu_conv_pool_backward_refuses_a_dx_out_that_is_not_an_array():
        x, w = rnd(1, 1, 6, 6), rnd(2, 1, 3, 3, seed=1)
        argmax = np.array([0, 5, 10, 15, 1, 3, 8, 2], i32).reshape(1, 2, 2, 2)
        call = lambda: cpu.conv2d_relu_maxpool2d_backward(  # noqa: E731
            x, w, rnd(1, 2, 2, 2), argmax, np.ones((1, 2, 2, 2), f32), 1, 0, z(2, 1, 3, 3),
            z(2), True)
        assert error_of(call) in ("ShapeError", "DTypeError")  # was a bare AttributeError


# --------------------------------------------------- the CUDA set, in a simulator subprocess
CUDA_TESTS = ["test_cuda_float16_arrays_get_a_dtype_error",
              "test_cuda_fill_of_a_transposed_device_array",
              "test_cuda_conv_forward_into_its_own_input"]

if not SIMULATED:
    @pytest.mark.skipif(not HAVE_CUDA, reason="numba-cuda is not installed")
    @pytest.mark.parametrize("test", CUDA_TESTS)
    def test_in_the_simulator(test):
        env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
        run = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p",
                              "no:cacheprovider", "-k", test], env=env, capture_output=True,
                             text=True, timeout=600, cwd=REPO)
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]

else:
    import nnumba.kernels.cuda as gpu
    from nnumba.device import to_device, to_host

    @pytest.mark.parametrize("name,make", FLOAT16, ids=[f"{c[0]}-{i}" for i, c in enumerate(FLOAT16)])
    def test_cuda_float16_arrays_get_a_dtype_error(name, make):
        assert error_of(lambda: getattr(gpu, name)(*on_device(make()))) == "DTypeError"

    def test_cuda_fill_of_a_transposed_device_array():
        # The CPU set fills any view. The CUDA set's a.reshape(a.size) copies a
        # non-contiguous array in the simulator, so nothing is filled and no error is
        # raised; on a GPU it is numba's NotImplementedError.
        buf = to_device(z(3, 4))
        got = error_of(lambda: gpu.fill(buf.T, 2.5))
        assert got in ("no error", "ShapeError"), got
        if got == "no error":
            np.testing.assert_array_equal(to_host(buf), np.full((3, 4), 2.5, f32))

    def test_cuda_conv_forward_into_its_own_input():
        # matmul and the losses refuse an output that overlaps an input (ShapeError);
        # conv2d_forward does not. The CPU set computed the right values at this size;
        # the CUDA set overwrites x while other threads still read it.
        host = rnd(60)
        x_host = host[:50].reshape(1, 2, 5, 5).copy()
        w = rnd(3, 2, 3, 3, seed=1)
        buf = to_device(host)
        x = buf[:50].reshape(1, 2, 5, 5)
        out = buf[:27].reshape(1, 3, 3, 3)
        got = error_of(lambda: gpu.conv2d_forward(x, to_device(w), None, 1, 0, out))
        assert got in ("no error", "ShapeError"), got
        if got == "no error":
            np.testing.assert_allclose(to_host(out), conv_reference(x_host, w), rtol=1e-4,
                                       atol=1e-5)
