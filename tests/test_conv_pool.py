"""Conv2d + ReLU + MaxPool2d as one step: the fused kernels against the three
separate kernels (themselves checked against SciPy and PyTorch elsewhere), and
the model rewrite that runs them."""
import numpy as np
import pytest

import nnumba
from nnumba.kernels import cpu
from nnumba.kernels.cpu import conv_pool
from nnumba.kernels.geometry import conv2d_output_shape, pool2d_output_shape
from nnumba.layers import (AvgPool2d, Conv1d, Conv2d, MaxPool1d, MaxPool2d, ReLU,
                           ReLUMaxPool2d)
from nnumba.layers.conv_pool import Conv2dReLUMaxPool2d

# x, w, stride, pad, pool kernel, pool stride; whether the one-pass path takes it
CASES = [((3, 1, 14, 14), (4, 1, 3, 3), 1, 0, 3, 3, True),
         ((2, 2, 7, 7), (8, 2, 2, 2), 1, 1, 2, 2, True),           # padding
         ((2, 1, 28, 28), (32, 1, 5, 5), 1, 0, 3, 3, True),        # the lecture's conv1
         ((2, 1, 38, 38), (4, 1, 3, 3), 2, 0, 2, 2, True),         # stride 2, rows of 18
         ((2, 3, 8, 7), (3, 3, 3, 2), (2, 1), (1, 2), 2, 2, False),
         ((2, 2, 11, 11), (4, 2, 3, 3), 1, 1, 3, 2, False),         # overlapping pool
         ((2, 32, 8, 8), (64, 32, 5, 5), 1, 0, 2, 2, False),        # the GEMM path (conv2)
         ((2, 1, 12, 12), (6, 1, 3, 3), 1, 0, 2, 2, False)]         # 6 filters: not 4k


def _separate(x, w, b, stride, pad, pk, ps, dy):
    conv_shape = (x.shape[0], w.shape[0]) + conv2d_output_shape(x.shape[2], x.shape[3],
                                                                w.shape[2:], stride, pad)
    y = np.empty(conv_shape, x.dtype)
    cpu.conv2d_forward(x, w, b, stride, pad, y)
    out_shape = conv_shape[:2] + pool2d_output_shape(*conv_shape[2:], pk, ps)
    out, am = np.empty(out_shape, x.dtype), np.empty(out_shape, np.int32)
    cpu.relu_maxpool2d_forward(y, pk, ps, out, am)
    dense = np.empty(conv_shape, x.dtype)
    cpu.relu_maxpool2d_backward(dy, am, out, dense)
    dw, db, dx = np.zeros_like(w), np.zeros_like(b), np.empty_like(x)
    cpu.conv2d_backward_weight(x, dense, stride, pad, dw, db)
    cpu.conv2d_backward_input(dense, w, stride, pad, dx)
    return out, am, dw, db, dx


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_fused_kernels_equal_the_separate_ones(case, dtype):
    xs, ws, stride, pad, pk, ps, one_pass = case
    rng = np.random.default_rng(0)
    x, w = rng.uniform(-1, 1, xs).astype(dtype), rng.uniform(-1, 1, ws).astype(dtype)
    b = rng.uniform(-1, 1, ws[0]).astype(dtype)
    conv_hw = conv2d_output_shape(xs[2], xs[3], ws[2:], stride, pad)
    dy = rng.uniform(-1, 1, (xs[0], ws[0]) + pool2d_output_shape(*conv_hw, pk, ps)).astype(dtype)
    out, am, dw, db, dx = _separate(x, w, b, stride, pad, pk, ps, dy)
    got, got_am = np.full_like(out, np.nan), np.full_like(am, -7)
    cpu.conv2d_relu_maxpool2d_forward(x, w, b, stride, pad, pk, ps, got, got_am)
    assert conv_pool._in_cache(x, w, stride, pad, got_am, (pk, ps)) == one_pass
    np.testing.assert_array_equal(got, out)
    np.testing.assert_array_equal(got_am, am)
    for want_dx in (False, True):  # the weight gradient alone takes the one-pass path
        gw, gb = np.ones_like(w), np.ones_like(b)  # they add into what is there
        gx = np.full_like(x, np.nan) if want_dx else None
        cpu.conv2d_relu_maxpool2d_backward(x, w, dy, got_am, got, stride, pad, gw, gb, gx)
        np.testing.assert_array_equal(gw, dw + 1)
        np.testing.assert_array_equal(gb, db + 1)
        if want_dx:
            np.testing.assert_array_equal(gx, dx)


def test_no_bias_and_no_bias_gradient():
    rng = np.random.default_rng(1)
    x, w = rng.uniform(-1, 1, (2, 1, 14, 14)), rng.uniform(-1, 1, (4, 1, 3, 3))
    zero = np.zeros(4)
    dy = rng.uniform(-1, 1, (2, 4, 4, 4))
    out, am, dw, _, _ = _separate(x, w, zero, 1, 0, 3, 3, dy)
    got, got_am = np.empty_like(out), np.empty_like(am)
    cpu.conv2d_relu_maxpool2d_forward(x, w, None, 1, 0, 3, 3, got, got_am)
    np.testing.assert_array_equal(got, out)
    gw = np.zeros_like(w)
    cpu.conv2d_relu_maxpool2d_backward(x, w, dy, got_am, got, 1, 0, gw, None, None)
    np.testing.assert_array_equal(gw, dw)


def test_a_model_fuses_where_the_one_pass_kernels_take_the_step():
    model = nnumba.Sequential(Conv2d(1, 4, 3), ReLU(), MaxPool2d(2), Conv2d(4, 4, 3), ReLU(),
                              AvgPool2d(2), Conv2d(4, 4, 1), MaxPool2d(2), Conv2d(4, 8, 3),
                              ReLUMaxPool2d(3))
    assert [type(s).__name__ for s in model.steps] == [
        "Conv2dReLUMaxPool2d", "Conv2d", "ReLU", "AvgPool2d", "Conv2d", "MaxPool2d",
        "Conv2dReLUMaxPool2d"]
    assert model.steps[0].label == "Conv2d #0 + ReLU #1 + MaxPool2d #2"
    assert [item["type"] for item in model.spec()][:3] == ["Conv2d", "ReLU", "MaxPool2d"]
    # elsewhere the layers stay apart: many taps (the GEMM path), filters not in fours,
    # overlapping or other windows, and 1-D
    for layers in ([Conv2d(32, 64, 5), ReLU(), MaxPool2d(2)], [Conv2d(1, 6, 3), ReLU(),
                   MaxPool2d(2)], [Conv2d(1, 4, 3), ReLU(), MaxPool2d(3, 2)],
                   [Conv2d(1, 4, 3), ReLU(), MaxPool2d(4)]):
        steps = nnumba.Sequential(*layers).steps
        assert [type(s).__name__ for s in steps] == ["Conv2d", "ReLUMaxPool2d"]
    one_d = nnumba.Sequential(Conv1d(1, 4, 3), ReLU(), MaxPool1d(2))
    assert [type(s).__name__ for s in one_d.steps] == ["Conv1d", "ReLUMaxPool1d"]


@pytest.mark.parametrize("input_grad", [False, True])
def test_a_fused_model_trains_as_its_layers_one_by_one(input_grad):
    rng = np.random.default_rng(2)
    layers = [Conv2d(1, 8, 5), ReLU(), MaxPool2d(3), Conv2d(8, 4, 3), ReLU(), MaxPool2d(2)]
    model = nnumba.Sequential(*layers, seed=0).astype(np.float64)
    model.input_grad = input_grad
    x = rng.normal(size=(3, 1, 28, 28))
    out = model.forward(x).copy()
    g = rng.normal(size=out.shape)
    model.zero_grad()
    dx = model.backward(g)
    # the same layers, unfused: each run on its own
    h = x
    for layer in layers:
        layer.set_flags(needs_input_grad=True)
        h = layer.forward(h)
    np.testing.assert_array_equal(out, h)
    grads = {name: p.grad.copy() for name, p in model.params()}
    model.zero_grad()
    for layer in reversed(layers):
        g = layer.backward(g)
    for name, p in model.params():
        np.testing.assert_allclose(grads[name], p.grad, rtol=1e-12, atol=1e-14, err_msg=name)
    if input_grad:
        np.testing.assert_allclose(dx, g, rtol=1e-12, atol=1e-14)
    else:
        assert dx is None


def test_the_fused_step_reports_the_flops_of_its_layers():
    conv, pool = Conv2d(1, 8, 5), ReLUMaxPool2d(3)
    fused = Conv2dReLUMaxPool2d(conv, pool)
    conv_out = conv.output_shape((1, 28, 28))
    want = [a + b for a, b in zip(conv.flops((1, 28, 28)), pool.flops(conv_out))]
    assert list(fused.flops((1, 28, 28))) == want
    assert fused.output_shape((1, 28, 28)) == (8, 8, 8)
