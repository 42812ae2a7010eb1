"""Dropout (training mask, eval identity, seeding) and adaptive average pooling
(PyTorch's bins, against a NumPy reference and PyTorch itself)."""
import numpy as np
import pytest

import nnumba
from nnumba.layers.adaptive_pool import AdaptiveAvgPool2d
from nnumba.layers.dropout import Dropout

rng = np.random.default_rng(11)


# ---- Dropout --------------------------------------------------------------------------

def test_dropout_is_the_identity_in_eval_mode():
    x = rng.normal(size=(4, 10)).astype(np.float32)
    layer = Dropout(0.5).eval()
    assert np.array_equal(layer.forward(x), x)
    assert np.array_equal(layer.backward(x), x)


def test_dropout_zeroes_about_p_and_scales_the_rest():
    x = np.ones((200, 500), np.float32)
    y = Dropout(0.3, seed=0).forward(x)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.02  # the expectation is preserved


def test_dropout_backward_uses_the_mask_of_its_forward():
    layer = Dropout(0.5, seed=3)
    x = rng.normal(size=(6, 8)).astype(np.float32)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(dx != 0, y != 0)
    np.testing.assert_allclose(dx[dx != 0], 2.0)


def test_dropout_draws_a_new_mask_each_training_forward():
    layer = Dropout(0.5, seed=1)
    x = np.ones((10, 50), np.float32)
    assert not np.array_equal(layer.forward(x).copy(), layer.forward(x))


def test_fixed_mask_stays_until_asked():
    layer = Dropout(0.5, seed=1, resample=False)
    x = np.ones((10, 50), np.float32)
    first = layer.forward(x).copy()
    assert np.array_equal(layer.forward(x), first)
    layer.new_mask()
    assert not np.array_equal(layer.forward(x), first)


def test_dropout_is_reproducible_from_the_seed_or_the_model_seed():
    x = np.ones((8, 40), np.float32)
    assert np.array_equal(Dropout(0.5, seed=7).forward(x), Dropout(0.5, seed=7).forward(x))
    spec = [{"type": "Dropout", "p": 0.5}]
    a, b = nnumba.build(spec, seed=4), nnumba.build(spec, seed=4)
    assert np.array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(nnumba.build(spec, seed=5).forward(x), a.forward(x))


def test_dropout_extremes_and_bad_p():
    x = rng.normal(size=(3, 4)).astype(np.float32)
    assert np.array_equal(Dropout(0.0).forward(x), x)
    assert not Dropout(1.0).forward(x).any()
    for p in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="Dropout: p must be"):
            Dropout(p)


# ---- AdaptiveAvgPool2d ----------------------------------------------------------------

def numpy_adaptive_avg(x, out_h, out_w):
    n, c, h, w = x.shape
    y = np.empty((n, c, out_h, out_w), x.dtype)
    for i in range(out_h):
        h0, h1 = (i * h) // out_h, -((-(i + 1) * h) // out_h)
        for j in range(out_w):
            w0, w1 = (j * w) // out_w, -((-(j + 1) * w) // out_w)
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


@pytest.mark.parametrize("in_hw,out", [((6, 6), 6), ((13, 13), 6), ((8, 6), (4, 3)),
                                       ((7, 5), (3, 2)), ((3, 2), (5, 4)), ((1, 1), 2)])
def test_adaptive_avg_matches_numpy(in_hw, out):
    x = rng.normal(size=(2, 3) + in_hw)
    layer = AdaptiveAvgPool2d(out).astype(np.float64)
    out_hw = (out, out) if np.isscalar(out) else out
    np.testing.assert_allclose(layer.forward(x), numpy_adaptive_avg(x, *out_hw), rtol=1e-12)


@pytest.mark.parametrize("in_hw,out", [((13, 13), 6), ((7, 5), (3, 2)), ((3, 2), (5, 4)), ((6, 6), 6)])
def test_adaptive_avg_matches_pytorch_forward_and_backward(in_hw, out):
    torch = pytest.importorskip("torch")
    x = rng.normal(size=(2, 3) + in_hw)
    layer = AdaptiveAvgPool2d(out).astype(np.float64)
    y = layer.forward(x)
    g = rng.normal(size=y.shape)
    dx = layer.backward(g)
    xt = torch.from_numpy(x).requires_grad_()
    yt = torch.nn.functional.adaptive_avg_pool2d(xt, out)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12)


def test_adaptive_avg_refuses_bad_sizes_and_inputs():
    for bad in (0, (2, 0), (2, 2, 2), 1.5, "six"):
        with pytest.raises(ValueError, match="output_size"):
            AdaptiveAvgPool2d(bad)
    layer = AdaptiveAvgPool2d(2)
    with pytest.raises(nnumba.ShapeError, match=r"AdaptiveAvgPool2d: expected input of shape"):
        layer.forward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(nnumba.ShapeError, match="AdaptiveAvgPool2d"):
        layer.forward(np.zeros((2, 3, 0, 4), np.float32))
    assert layer.output_shape((256, 13, 13)) == (256, 2, 2)


def test_adaptive_flops_closed_form_counts_every_bin_and_stays_fast_when_huge():
    from nnumba.kernels.formulas import adaptive_bin
    from nnumba.layers.adaptive_pool import _bins_total
    for size in range(1, 40):
        for out in range(1, 40):
            bins = [adaptive_bin(i, size, out) for i in range(out)]
            assert _bins_total(size, out) == sum(end - start for start, end in bins)
    layer = AdaptiveAvgPool2d(output_size=10**9)   # a summary must not loop over the bins
    forward, _, _ = layer.flops((3, 5, 7))
    assert forward == 3 * 10**9 * (10**9 + 6)   # 5 divides 10**9, 7 does not
