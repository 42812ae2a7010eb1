"""Review 37 of the max-pools' NaN change (b627863..76e7d0e): the ReLU backward at a
NaN output (position-dependent under fastmath, dropped on CUDA), against torch."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnumba


# ---- 1. CPU ReLU backward at NaN depends on the element's position (fastmath) ----------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [8, 17, 37])
def test_relu_backward_at_nan_is_positionless_and_matches_torch(n, dtype):
    """torch's ReLU backward (threshold_backward on the result) passes the gradient at a
    NaN output; nnumba's CPU relu_grad, `g if y > 0 else 0` compiled with fastmath
    (nnan), gives 0 in the vectorised loop body and g in the scalar tail: for n = 37
    float32, 0 at positions 0..31 and 1 at 32..36."""
    torch = pytest.importorskip("torch")
    x = np.full((1, n), np.nan, dtype)
    layer = nnumba.get_layer("ReLU")().astype(dtype)
    layer.forward(x, check_finite=False)
    g = np.arange(1, n + 1, dtype=dtype).reshape(1, n)
    dx = layer.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    torch.relu(tx).backward(torch.tensor(g))
    np.testing.assert_array_equal(dx, tx.grad.numpy())


def test_unfused_conv_relu_maxpool_gradient_matches_torch_with_a_nan_filter():
    """A NaN weight makes filter 0's maps NaN; torch's db[0] is the sum of dy over
    them (max-pool sends dy to the last NaN, ReLU passes it).  The fused model
    (Conv2dReLUMaxPool2d) agrees with torch; the same layers kept apart (an Identity
    between) give db[0] = 0 (the unfused ReLU backward drops it, see above)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    spec = [{"type": "Conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3},
            {"type": "ReLU"}, {"type": "Identity"}, {"type": "MaxPool2d", "kernel_size": 2}]
    m = nnumba.build(spec, seed=0)
    p = dict(m.params())
    w, b = p["0.weight"].value, p["0.bias"].value
    w[0, 0, 1, 1] = np.nan
    x = rng.standard_normal((2, 2, 10, 10)).astype(w.dtype)
    y = m.forward(x)
    dy = rng.standard_normal(y.shape).astype(w.dtype)
    m.zero_grad()
    m.backward(dy)
    tw, tb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    F.max_pool2d(torch.relu(F.conv2d(torch.tensor(x), tw, tb)), 2).backward(torch.tensor(dy))
    np.testing.assert_allclose(p["0.bias"].grad, tb.grad.numpy(), rtol=1e-4, atol=1e-5)


# ---- 2. CUDA fused ReLU+MaxPool (and ReLU) backward drop the gradient at NaN ----------

_SIM = textwrap.dedent("""
    import numpy as np, torch
    from numba import cuda
    from nnumba.kernels.cuda import pool, activations
    x = np.array([np.nan, 1., 2., np.nan, -1., np.nan, 3., 5.]).reshape(1, 1, 2, 4)
    out = cuda.to_device(np.empty((1, 1, 1, 2)))
    am = cuda.to_device(np.empty((1, 1, 1, 2), np.int32))
    dx = cuda.to_device(np.empty_like(x))
    pool.relu_maxpool2d_forward(cuda.to_device(x), 2, 2, out, am)
    pool.relu_maxpool2d_backward(cuda.to_device(np.ones((1, 1, 1, 2))), am, out, dx)
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(torch.relu(tx), 2).sum().backward()
    np.testing.assert_array_equal(dx.copy_to_host(), tx.grad.numpy())   # [0 0 0 1 0 1 0 0]
    y = cuda.to_device(np.array([np.nan, 1.0]))
    d = cuda.to_device(np.empty(2))
    activations.relu_backward(y, cuda.to_device(np.ones(2)), d)
    np.testing.assert_array_equal(d.copy_to_host(), [1.0, 1.0])          # torch: [1, 1]
""")


def test_cuda_relu_backwards_pass_the_gradient_at_nan_as_torch_and_the_cpu():
    """CUDA _maxpool_backward's `if relu and not y > 0: continue` and the CUDA
    relu_grad drop the gradient at a NaN output; the CPU's relu_maxpool2d_backward and
    torch pass it (dx [0 0 0 1 0 1 0 0]); the CUDA kernel gives all zeros."""
    pytest.importorskip("torch")
    pytest.importorskip("numba_cuda")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", _SIM], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


# ---- 3. CPU bias kernels raise a bare ValueError; the CUDA twins a ShapeError ---------
