"""Fuzz round 44: differential fuzzing of the built-in layers and small models against PyTorch.

Finding 1: the direct convolution kernels pad the tap list to a multiple of 5 with
zero-weight taps that read the first tap's input run; an infinite value there gives
0 * inf = NaN, where PyTorch (and the convolution's definition) gives +-inf.
"""
import numpy as np
import pytest

import nnumba
from nnumba.layers import Conv1d, Conv2d


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv1d_direct_forward_keeps_an_infinite_input_infinite(dtype):
    torch = _torch()
    conv = Conv1d(1, 1, kernel_size=2, bias=False).astype(dtype)
    conv.weight.value[...] = [[[0.5, 0.25]]]
    x = np.ones((1, 1, 20), dtype)      # 19 outputs: the direct kernels' path
    x[0, 0, 0] = np.inf
    y = conv.forward(x, check_finite=False)
    ref = torch.nn.functional.conv1d(torch.from_numpy(x),
                                     torch.from_numpy(conv.weight.value.copy())).numpy()
    assert ref[0, 0, 0] == np.inf
    np.testing.assert_array_equal(y, ref)   # nnumba: y[0, 0, 0] is NaN


def test_conv2d_direct_forward_keeps_minus_inf_as_torch():
    torch = _torch()
    conv = Conv2d(1, 1, kernel_size=(2, 3), stride=(1, 3), padding=2, bias=False)
    conv = conv.astype(np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 8, 5))
    x[0, 0, 2, 1] = -np.inf
    y = conv.forward(x, check_finite=False)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x),
                                     torch.from_numpy(conv.weight.value.copy()),
                                     stride=(1, 3), padding=2).numpy()
    assert np.array_equal(np.isnan(y), np.isnan(ref))   # nnumba: NaN where torch has -inf
    np.testing.assert_allclose(y, ref, rtol=1e-12)


def _models(spec, weights):
    torch = _torch()
    m = nnumba.build(spec, seed=0)
    params = dict(m.params())
    for name, value in weights.items():
        params[name].value[...] = value
    mods = []
    for layer in spec:
        a = {k: v for k, v in layer.items() if k != "type"}
        mods.append(getattr(torch.nn, layer["type"])(**a))
    tm = torch.nn.Sequential(*mods)
    tm.load_state_dict({k: torch.from_numpy(p.value.copy()) for k, p in m.params()})
    return m, tm, torch


def test_model_whose_first_conv_overflows_gives_inf_not_nan():
    """Finite input and weights; layer 0 overflows float32 to +inf; the next Conv1d
    must give +inf (as torch), not NaN."""
    spec = [{"type": "Conv1d", "in_channels": 1, "out_channels": 1, "kernel_size": 1, "bias": False},
            {"type": "Conv1d", "in_channels": 1, "out_channels": 1, "kernel_size": 2, "bias": False}]
    m, tm, torch = _models(spec, {"0.weight": 10.0, "1.weight": [[[0.5, 0.25]]]})
    x = np.ones((1, 1, 20), np.float32)
    x[0, 0, 0] = 1e38
    y = m.forward(x)
    ref = tm(torch.from_numpy(x)).detach().numpy()
    assert ref[0, 0, 0] == np.inf
    np.testing.assert_array_equal(y, ref)   # nnumba: y[0, 0, 0] is NaN


def test_fused_conv_relu_maxpool_gives_inf_not_nan_after_an_overflow():
    """The lenet-style fused step Conv2dReLUMaxPool2d runs the same direct body."""
    spec = [{"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 1, "bias": False},
            {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": [1, 2], "bias": False},
            {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2}]
    m, tm, torch = _models(spec, {"0.weight": 10.0, "1.weight": 0.5})
    assert type(m.steps[-1]).__name__ == "Conv2dReLUMaxPool2d"
    x = np.ones((1, 1, 4, 21), np.float32)
    x[0, 0, 0, 0] = 1e38
    y = m.forward(x)
    ref = tm(torch.from_numpy(x)).detach().numpy()
    assert (ref[0, :, 0, 0] == np.inf).all()
    np.testing.assert_array_equal(y, ref)   # nnumba: [nan nan nan nan]
