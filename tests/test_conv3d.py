"""Conv3d ("a 3d convolution can be used if the channel index has some metric meaning,
such as time for a series of grayscale video frames"): against SciPy's correlation and
PyTorch's Conv3d, its errors, and a model of video frames that learns which way a dot
moves."""
import numpy as np
import pytest
from scipy.signal import correlate

import nnumba
from nnumba.errors import ShapeError, SpecError
from nnumba.layers import Conv3d, Flatten, Linear, ReLU
from nnumba.losses import CrossEntropy
from nnumba.train import SGDTrainer

GEOMETRIES = [
    ({"in_channels": 2, "out_channels": 3, "kernel_size": 2}, (2, 2, 3, 4, 5)),
    ({"in_channels": 1, "out_channels": 2, "kernel_size": [3, 2, 2], "stride": [2, 1, 2],
      "padding": [1, 0, 1]}, (2, 1, 5, 3, 4)),
    ({"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1}, (2, 3, 4, 6, 6)),
    ({"in_channels": 2, "out_channels": 3, "kernel_size": [2, 3, 3], "stride": [3, 2, 1],
      "padding": [2, 1, 0], "bias": False}, (3, 2, 7, 5, 6)),
    ({"in_channels": 1, "out_channels": 1, "kernel_size": [1, 2, 2]}, (1, 1, 1, 2, 2)),
]


def _triple(v):
    return tuple(v) if isinstance(v, list) else (v,) * 3


def _scipy_conv3d(x, w, b, stride, padding):
    p = _triple(padding)
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple((q, q) for q in p))
    sd, sh, sw = _triple(stride)
    out = np.stack([np.stack([sum(correlate(xp[n, c], w[d, c], mode="valid")
                                  for c in range(x.shape[1]))[::sd, ::sh, ::sw]
                              for d in range(w.shape[0])]) for n in range(x.shape[0])])
    return out if b is None else out + b[None, :, None, None, None]


@pytest.mark.parametrize("kwargs,shape", GEOMETRIES)
def test_forward_is_scipys_correlation(kwargs, shape):
    layer = Conv3d(**kwargs).astype(np.float64)
    x = np.random.default_rng(0).standard_normal(shape)
    want = _scipy_conv3d(x, layer.weight.value, None if layer.bias is None else layer.bias.value,
                         kwargs.get("stride", 1), kwargs.get("padding", 0))
    y = layer.forward(x)
    assert y.shape == (shape[0],) + layer.output_shape(shape[1:]) == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    y32 = Conv3d(**kwargs).forward(x.astype(np.float32))  # float32 too, to its rounding
    assert y32.dtype == np.float32 and y32.shape == want.shape


@pytest.mark.parametrize("kwargs,shape", GEOMETRIES)
def test_forward_and_backward_are_torchs(kwargs, shape):
    torch = pytest.importorskip("torch")
    layer = Conv3d(**kwargs).astype(np.float64)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    theirs = torch.nn.Conv3d(**{k: _triple(v) if k in ("kernel_size", "stride", "padding")
                                else v for k, v in kwargs.items()}).double()
    with torch.no_grad():
        theirs.weight[...] = torch.tensor(layer.weight.value)
        if layer.bias is not None:
            theirs.bias[...] = torch.tensor(layer.bias.value)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    g = rng.standard_normal(tuple(yt.shape))
    (yt * torch.tensor(g)).sum().backward()
    y = layer.forward(x)
    layer.zero_grad()
    dx = layer.backward(g)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, theirs.weight.grad.numpy(), rtol=1e-11,
                               atol=1e-12)
    if layer.bias is not None:
        np.testing.assert_allclose(layer.bias.grad, theirs.bias.grad.numpy(), rtol=1e-12)


def test_flops_are_the_closed_form():
    layer = Conv3d(2, 3, [2, 3, 3], padding=[0, 1, 1])
    d, t, h, w = layer.output_shape((2, 5, 6, 7))
    macs = 2 * d * t * h * w * 2 * 2 * 3 * 3
    assert layer.flops((2, 5, 6, 7)) == (macs + d * t * h * w, macs + d * t * h * w, macs)


@pytest.mark.parametrize("kwargs,message", [
    ({"kernel_size": [2, 2]}, "kernel_size must be an integer or a list of 3 integers"),
    ({"kernel_size": 0}, "kernel_size must be an integer >= 1"),
    ({"kernel_size": 2, "stride": [1, 1, 0]}, "stride must be an integer >= 1"),
    ({"kernel_size": 2, "padding": -1}, "padding must be an integer >= 0"),
    ({"kernel_size": 2.5}, "kernel_size must be an integer"),
])
def test_bad_configurations_are_refused(kwargs, message):
    with pytest.raises(SpecError, match=message):
        Conv3d(1, 2, **kwargs)


def test_bad_inputs_are_refused_by_name():
    layer = Conv3d(2, 3, [3, 2, 2])
    with pytest.raises(ShapeError, match="Conv3d"):
        layer.forward(np.zeros((2, 2, 4, 4), np.float32))  # no time axis
    with pytest.raises(ShapeError, match="Conv3d"):
        layer.forward(np.zeros((2, 1, 4, 4, 4), np.float32))  # channels
    with pytest.raises(ShapeError, match=r"smaller than the kernel \(3, 2, 2\)"):
        layer.forward(np.zeros((2, 2, 2, 4, 4), np.float32))  # 2 frames, 3 taps


def _moving_dots(n, rng, frames=4, size=8):
    """Grayscale clips of a dot moving one pixel a frame, right (class 1) or left (0)."""
    y = rng.integers(0, 2, n)
    x = np.zeros((n, 1, frames, size, size), np.float32)
    for i in range(n):
        row, col = rng.integers(0, size), rng.integers(frames - 1, size - frames + 1)
        for t in range(frames):
            x[i, 0, t, row, col + (t if y[i] else -t)] = 1.0
    return x, y


def test_a_conv3d_model_learns_which_way_a_dot_moves_and_survives_save_and_load(tmp_path):
    rng = np.random.default_rng(0)
    x, y = _moving_dots(400, rng)
    x_test, y_test = _moving_dots(200, rng)
    model = nnumba.Sequential(Conv3d(1, 4, [2, 1, 3], padding=[0, 0, 1]), ReLU(), Flatten(),
                              Linear(4 * 3 * 8 * 8, 2), seed=0)
    SGDTrainer(model, CrossEntropy(), lr=0.1, momentum=0.9, batch_size=20, seed=0,
               progress=False).fit(x, y, epochs=15)
    accuracy = (model.predict(x_test).argmax(axis=1) == y_test).mean()
    assert accuracy > 0.95
    nnumba.save(model, tmp_path / "video.npz")
    again = nnumba.load_model(tmp_path / "video.npz")
    np.testing.assert_array_equal(again.predict(x_test), model.predict(x_test))
