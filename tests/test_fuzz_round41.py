"""Fuzz round 41: the core API against unusual and bad inputs (every layer's examples
against torch, 1,700 random models, ~3,600 constructor mutations: no mismatch); these
are the NaN and mask cases that came out as ordinary numbers."""
import math

import numpy as np
import pytest

import nnumba


@pytest.mark.parametrize("loss_name, margin", [("Hinge", 1.0), ("Perceptron", 0.0)])
def test_hinge_losses_do_not_score_a_nan_prediction_as_correct(loss_name, margin):
    """max(0, margin - y * NaN) is NaN (PyTorch's clamp too); the kernel's `v > 0` took
    the zero branch: 0.25 for [NaN, 0.5], and the trainers' per-batch NaN check never
    fired for these losses."""
    loss = nnumba.get_loss(loss_name)()
    value = loss.forward(np.array([np.nan, 0.5]), np.array([1, 1]))
    assert math.isnan(value)
    grad = loss.backward()
    assert math.isnan(grad[0]) and grad[1] == (-0.5 if margin > 0.5 else 0.0)
    finite = nnumba.get_loss(loss_name)().forward(np.array([0.25, 0.5]), np.array([1, -1]))
    assert finite == pytest.approx((max(0, margin - 0.25) + max(0, margin + 0.5)) / 2)


def test_perceptron_result_refuses_masked_values():
    """decision / predict read the values under a mask (np.asarray drops it): a masked
    1e300 was used as data; train_perceptron and Sequential.predict refuse it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    result = nnumba.train_perceptron(x, np.where(x[:, 0] > 0, 1, -1))
    xm = np.ma.masked_array(x.copy(), mask=np.zeros(x.shape, bool))
    xm.mask[0, 0] = True
    xm.data[0, 0] = 1e300
    for method in (result.decision, result.predict):
        with pytest.raises(nnumba.DTypeError, match="masked"):
            method(xm)
    np.testing.assert_array_equal(result.predict(np.ma.masked_array(x)), result.predict(x))


# ---- fused ReLU + MaxPool turned NaN into 0 (unfused and torch: NaN) -------------------

def _nan_making_model(tail, out_channels):
    """Conv 1x1 (weights +2, -2) then Conv 1x1 (weights 1, 1): a finite input of 3e38
    gives +inf and -inf, whose sum is NaN (exact: no rounding order involved)."""
    spec = [{"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 1,
             "bias": False},
            {"type": "Conv2d", "in_channels": 2, "out_channels": out_channels,
             "kernel_size": 1, "bias": False}] + tail + [{"type": "Flatten"}]
    m = nnumba.build(spec, seed=0)
    p = dict(m.params())
    p["0.weight"].value[...] = np.array([2, -2], np.float32).reshape(2, 1, 1, 1)
    p["1.weight"].value[...] = 1
    return m


@pytest.mark.parametrize("out_channels", [1, 4])  # ReLUMaxPool2d, Conv2dReLUMaxPool2d
def test_fused_relu_maxpool_propagates_nan_as_unfused_and_torch(out_channels):
    torch = pytest.importorskip("torch")
    x = np.full((1, 1, 2, 2), 3e38, np.float32)
    fused = _nan_making_model([{"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2}],
                              out_channels)
    unfused = _nan_making_model([{"type": "ReLU"}, {"type": "Identity"},
                                 {"type": "MaxPool2d", "kernel_size": 2}], out_channels)
    p = dict(fused.params())
    t = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(p["0.weight"].value))
    t = torch.nn.functional.conv2d(t, torch.tensor(p["1.weight"].value))
    ref = torch.nn.functional.max_pool2d(torch.relu(t), 2).reshape(1, -1).numpy()
    assert np.isnan(ref).all()
    assert np.isnan(unfused.forward(x)).all()       # the unfused steps agree with torch
    y = fused.forward(x)                              # now: 0.0 everywhere
    assert np.isnan(y).all(), f"fused ReLU+MaxPool2d gave {y.ravel()} where torch gives NaN"


@pytest.mark.parametrize("name, shape", [("ReLUMaxPool2d", (1, 1, 2, 2)),
                                         ("ReLUMaxPool1d", (1, 1, 2))])
def test_relu_maxpool_layer_propagates_nan_as_torch(name, shape):
    torch = pytest.importorskip("torch")
    x = np.ones(shape)
    x.flat[0] = np.nan
    layer = nnumba.get_layer(name)(kernel_size=2).astype(np.float64)
    y = layer.forward(x, check_finite=False)
    pool = torch.nn.functional.max_pool2d if len(shape) == 4 else torch.nn.functional.max_pool1d
    ref = pool(torch.relu(torch.tensor(x)), 2).numpy()
    assert np.isnan(ref).all()
    assert np.isnan(y).all(), f"{name} gave {y.ravel()} for a NaN window; torch gives NaN"


# ---- 2. Hinge / Perceptron loss: NaN predictions give loss 0 and gradient 0 -----------------


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("k, s, size", [(3, 3, 9), (2, 2, 8), (3, 2, 9), (2, 2, 4)])
def test_max_pool_windows_holding_nan_give_nan_on_every_kernel_path(k, s, size, relu):
    """Closed form: a window's max is NaN where it holds one (PyTorch's rule), else the
    max (of relu(x) for the fused layer): the lecture's pools (two-pass rows kernels, k 3
    and k 2) and the generic one (overlapping windows).  A NaN was taken only where it
    was scanned first, and the fused ReLU turned a NaN maximum into 0."""
    from nnumba.kernels.cpu import pool
    rng = np.random.default_rng(k * 10 + s)
    x = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    x[0, 0, 1, 1] = x[1, 2, size - 1, size - 2] = np.nan
    ho = (size - k) // s + 1
    out, am = np.empty((2, 3, ho, ho), np.float32), np.empty((2, 3, ho, ho), np.int32)
    (pool.relu_maxpool2d_forward if relu else pool.maxpool2d_forward)(x, k, s, out, am)
    v = np.maximum(x, 0) if relu else x
    windows = np.lib.stride_tricks.sliding_window_view(v, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    want = np.where(np.isnan(windows).any(axis=(-2, -1)), np.nan, np.nanmax(windows, (-2, -1)))
    np.testing.assert_array_equal(out, want)
    assert np.isnan(out).sum() >= 2
