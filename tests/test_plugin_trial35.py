"""Plugin trial 35: GLU, a residual block and a depthwise-separable Conv1d written
from the docs alone with only self.kernels and self._buffer (the kits passed them on
the CPU and in the CUDA simulator; float64 within 5e-15 of torch).  These are the
kernel misuses nothing caught."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnumba import Layer, testing
from nnumba.errors import ShapeError


class _AliasResidual(Layer):
    """y = x + relu(x W^T + b); backward computes ds W into ds itself (matmul aliasing)."""

    examples = [({"features": 4}, (3, 4)), ({"features": 2}, (5, 2))]
    kept_for_backward = ("_x", "_h")

    def __init__(self, features: int):
        super().__init__()
        self.features = features
        self.weight = self.add_param("weight", (features, features))
        self.bias = self.add_param("bias", (features,))

    def reset_parameters(self, rng):
        bound = 1 / np.sqrt(self.features)
        self.weight.value[...] = rng.uniform(-bound, bound, self.weight.value.shape)
        self.bias.value[...] = rng.uniform(-bound, bound, self.bias.value.shape)

    def input_shape(self):
        return (self.features,)

    def output_shape(self, input_shape):
        return (self.features,)

    def _forward(self, x):
        k = self.kernels
        h = self._buffer("h", x.shape)
        k.matmul(x, self.weight.value, h, trans_b=True)
        k.add_bias_relu(h, self.bias.value)
        y = self._buffer("y", x.shape)
        k.fill(y, 0)
        k.accumulate(y.reshape(y.size), h.reshape(h.size))
        k.accumulate(y.reshape(y.size), x.reshape(x.size))
        self._x, self._h = x, h
        return y

    def _backward(self, dl_dy):
        k = self.kernels
        ds = self._buffer("ds", dl_dy.shape)
        k.relu_backward_bias_grad(self._h, dl_dy, ds, self.bias.grad)
        k.matmul(ds, self._x, self.weight.grad, trans_a=True, accumulate=True)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        k.fill(dx, 0)
        k.accumulate(dx.reshape(dx.size), dl_dy.reshape(dl_dy.size))
        k.matmul(ds, self.weight.value, ds)          # BUG: out overlaps a
        k.accumulate(dx.reshape(dx.size), ds.reshape(ds.size))
        return dx




def test_matmul_refuses_an_output_overlapping_an_input():
    """The layer computes ds @ W into ds itself, which the docs forbid: right at the kit's
    sizes, off by up to ~190 in the input gradient at 64 x 64; check_all passed it."""
    layer = _AliasResidual(64).astype("float64")
    x = np.random.default_rng(0).standard_normal((64, 64))
    layer.forward(x)
    with pytest.raises(ShapeError, match="overlaps an input"):
        layer.backward(np.ones((64, 64)))
    with pytest.raises(testing.ConformanceError):
        testing.check_all(_AliasResidual)
    from nnumba.kernels import cpu as k
    a, out = np.ones((3, 4)), np.empty((3, 3))
    k.matmul(a, a, out, trans_b=True)  # inputs may share memory; only the output may not
    np.testing.assert_array_equal(out, np.full((3, 3), 4.0))
    buf = np.ones((6, 3))
    with pytest.raises(ShapeError):  # a view sharing one row with the input
        k.matmul(buf[:3], np.eye(3), buf[2:5])


@pytest.mark.parametrize("kernel", ["accumulate", "multiply", "scale"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cpu_elementwise_kernel_refuses_a_2d_array_and_writes_nothing(kernel, dtype):
    """Given 2-D arrays (a reshape forgotten: fill takes any shape) the kernels looped
    over rows up to the element count and wrote past the buffers' ends (glibc abort,
    segfault); the arrays here are views at the start of larger buffers of sentinels."""
    from nnumba.kernels import cpu as k
    rng = np.random.default_rng(0)
    pa, po = np.full(200, 7.0, dtype), np.full(200, 7.0, dtype)
    a, out = pa[:12].reshape(3, 4), po[:12].reshape(3, 4)
    b = rng.standard_normal((3, 4)).astype(dtype)
    call = {"accumulate": lambda: k.accumulate(a, b), "multiply": lambda: k.multiply(a, b, out),
            "scale": lambda: k.scale(a, 2.0, out)}[kernel]
    with pytest.raises(ShapeError, match="flat"):
        call()
    assert np.all(pa == 7.0) and np.all(po == 7.0)
    with pytest.raises(ShapeError, match="flat"):  # a shorter second array: read past it
        k.accumulate(pa[:12], b.reshape(-1)[:6])
    k.accumulate(pa[:12], b.reshape(-1))  # flat, one size: right
    np.testing.assert_allclose(pa[:12], 7.0 + b.reshape(-1), rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda k: k.add_bias(np.zeros((4, 3)), np.ones(2)),           # a bias too short: read past
    lambda k: k.add_bias(np.zeros((2, 3, 4)), np.ones(3)),        # (N, C, L): rows, silently
    lambda k: k.add_bias_relu(np.zeros((4, 3)), np.ones(4)),
    lambda k: k.accumulate_bias_grad(np.zeros((4, 3)), np.ones(5)),  # written past
    lambda k: k.relu_backward_bias_grad(np.zeros((4, 3)), np.ones((4, 2)), np.zeros((4, 3)),
                                        np.zeros(3))])
def test_the_bias_kernels_refuse_shapes_they_would_index_past(call):
    """A plugin calls the kernels directly, with no layer check between: a 3-D array
    added the bias to whole rows, and a bias of another width was read or written past
    its end (numba checks no bounds)."""
    from nnumba.kernels import cpu as k
    with pytest.raises(ValueError, match="bias|shape"):
        call(k)
    y = np.zeros((4, 3))
    k.add_bias(y, np.arange(3.0))
    np.testing.assert_array_equal(y, np.tile(np.arange(3.0), (4, 1)))


_SIM_SCRIPT = textwrap.dedent('''
    import numpy as np
    from nnumba import Layer, testing

    class WritesDy(Layer):
        """y = x W^T; backward scales dl_dy in place (a rule break check_all names)."""
        examples = [({"features": 3}, (4, 3))]
        def __init__(self, features):
            super().__init__()
            self.features = features
            self.weight = self.add_param("weight", (features, features))
        def reset_parameters(self, rng):
            self.weight.value[...] = rng.uniform(-1, 1, self.weight.value.shape)
        def input_shape(self):
            return (self.features,)
        def output_shape(self, s):
            return (self.features,)
        def _forward(self, x):
            y = self._buffer("y", x.shape)
            self.kernels.matmul(x, self.weight.value, y, trans_b=True)
            self._x = x
            return y
        def _backward(self, dl_dy):
            k = self.kernels
            k.scale(dl_dy.reshape(dl_dy.size), 2.0, dl_dy.reshape(dl_dy.size))
            k.scale(dl_dy.reshape(dl_dy.size), 0.5, dl_dy.reshape(dl_dy.size))
            k.scale(dl_dy.reshape(dl_dy.size), 3.0, dl_dy.reshape(dl_dy.size))
            k.matmul(dl_dy, self._x, self.weight.grad, trans_a=True, accumulate=True)
            dx = self._buffer("dx", dl_dy.shape)
            k.matmul(dl_dy, self.weight.value, dx)
            return dx

    try:
        testing.check_device(WritesDy, "cuda")
        print("RESULT accepted")
    except Exception as e:
        print("RESULT", type(e).__name__, str(e).replace("\\n", " "))
''')


def test_check_device_names_a_write_into_dl_dy_not_a_device_difference(tmp_path):
    """The kit ran the CPU backward on its own g, which this layer overwrites, then
    moved g to the device: the devices got different gradients and the device was
    blamed ("the input gradient on cuda differs from the CPU's")."""
    pytest.importorskip("numba.cuda")
    script = tmp_path / "sim.py"
    script.write_text(_SIM_SCRIPT)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=600)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")]
    assert lines, proc.stdout + proc.stderr
    line = lines[-1]
    if "numba-cuda" in line or "DeviceUnavailable" in line:
        pytest.skip("no CUDA simulator: " + line)
    # Either the kit compares like with like (accepted: both devices compute the same),
    # or it names the real fault; never a made-up device difference.
    assert "differs from the CPU" not in line, line
