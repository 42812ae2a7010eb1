"""Plugin trial 23: nnumba.testing.check_fused (and so check_model) missed two ways a
fused step written from docs/plugins.md breaks the contract every layer keeps (check_all
enforces each for a single layer): overwriting the parameters' gradients instead of
adding into them, and writing into dl_dy. Each test first shows, against the unfused
layers run one after another, that the mutant is really wrong, then that the kit says so.
"""
import numpy as np
import pytest

import nnumba
from nnumba import Layer
from nnumba.layers import Conv2d, ReLU, Tanh
from nnumba.testing import ConformanceError, check_fused


def dw_forward(x, w, b, y):
    n, c, hh, ww = x.shape
    xp = np.zeros((n, c, hh + 2, ww + 2), x.dtype)
    xp[:, :, 1:-1, 1:-1] = x
    y[...] = 0
    for i in range(3):
        for j in range(3):
            y += xp[:, :, i:i + hh, j:j + ww] * w[None, :, i, j, None, None]
    y += b[None, :, None, None]


def dw_backward(x, w, dy, wgrad, bgrad, dx):
    n, c, hh, ww = x.shape
    xp = np.zeros((n, c, hh + 2, ww + 2), x.dtype)
    xp[:, :, 1:-1, 1:-1] = x
    for i in range(3):
        for j in range(3):
            wgrad[:, i, j] += np.einsum("nchw,nchw->c", dy, xp[:, :, i:i + hh, j:j + ww])
    bgrad += dy.sum(axis=(0, 2, 3))
    if dx is not None:
        dxp = np.zeros_like(xp)
        for i in range(3):
            for j in range(3):
                dxp[:, :, i:i + hh, j:j + ww] += dy * w[None, :, i, j, None, None]
        dx[...] = dxp[:, :, 1:-1, 1:-1]


class DWConvT23(Layer):
    """Depthwise 3x3 convolution, padding 1, with bias."""
    devices = ("cpu",)
    kept_for_backward = ("_x",)

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.weight = self.add_param("weight", (channels, 3, 3))
        self.bias = self.add_param("bias", (channels,))

    def reset_parameters(self, rng):
        self.weight.value[...] = rng.uniform(-0.5, 0.5, self.weight.value.shape)
        self.bias.value[...] = rng.uniform(-0.5, 0.5, self.bias.value.shape)

    def input_shape(self):
        return (self.channels, None, None)

    def output_shape(self, s):
        return tuple(s)

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        dw_forward(x, self.weight.value, self.bias.value, y)
        self._x = x
        return y

    def _backward(self, dl_dy):
        dx = self._buffer("dx", dl_dy.shape) if self.needs_input_grad else None
        dw_backward(self._x, self.weight.value, dl_dy, self.weight.grad, self.bias.grad, dx)
        return dx


class FusedT23(Layer):
    """DWConvT23 then ReLU, correct."""
    devices = ("cpu",)
    kept_for_backward = ("_x", "_y")

    def __init__(self, conv, relu):
        super().__init__()
        self.conv, self.relu = conv, relu

    def input_shape(self):
        return self.conv.input_shape()

    def output_shape(self, s):
        return tuple(s)

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        dw_forward(x, self.conv.weight.value, self.conv.bias.value, y)
        np.maximum(y, 0, out=y)
        self._x, self._y = x, y
        return y

    def _backward(self, dl_dy):
        ds = self._buffer("ds", dl_dy.shape)
        np.multiply(dl_dy, self._y > 0, out=ds)
        dx = self._buffer("dx", dl_dy.shape) if self.needs_input_grad else None
        dw_backward(self._x, self.conv.weight.value, ds, self.conv.weight.grad,
                    self.conv.bias.grad, dx)
        return dx


class OverwritesGrads(FusedT23):
    """Sets the pair's gradients instead of adding to them."""
    def _backward(self, dl_dy):
        self.conv.weight.grad[...] = 0
        self.conv.bias.grad[...] = 0
        return super()._backward(dl_dy)


class WritesDlDy(FusedT23):
    """Masks the upstream gradient in place (the rule: never write into dl_dy)."""
    def _backward(self, dl_dy):
        np.multiply(dl_dy, self._y > 0, out=dl_dy)
        dx = self._buffer("dx", dl_dy.shape) if self.needs_input_grad else None
        dw_backward(self._x, self.conv.weight.value, dl_dy, self.conv.weight.grad,
                    self.conv.bias.grad, dx)
        return dx


def relu_fusing(fused_cls):
    class R(ReLU):
        def fuse_after(self, previous):
            if type(previous) is DWConvT23:
                return fused_cls(previous, self)
            return super().fuse_after(previous)
    return R


def model(fused_cls, tanh_first=False, seed=0):
    layers = [Conv2d(1, 2, 3), Tanh()] if tanh_first else []
    m = nnumba.Sequential(*layers, DWConvT23(2), relu_fusing(fused_cls)(), seed=seed)
    return m.astype("float64")


def grads(m, x, g, times=1):
    m.train()
    m.zero_grad()
    for _ in range(times):
        m.forward(x)
        m.backward(g.copy())
    return {k: np.array(p.grad) for k, p in m.params()}


def reference(x, g, tanh_first=False, times=1):
    """The same layers with the built-in ReLU: no fusion."""
    layers = [Conv2d(1, 2, 3), Tanh()] if tanh_first else []
    m = nnumba.Sequential(*layers, DWConvT23(2), ReLU(), seed=0).astype("float64")
    return grads(m, x, g, times)


rng = np.random.default_rng(0)
X = rng.standard_normal((3, 2, 5, 4))
G = rng.standard_normal((3, 2, 5, 4))


def test_correct_fused_step_passes_and_matches_reference():
    m = model(FusedT23)
    assert any(isinstance(s, FusedT23) for s in m.steps)
    got, want = grads(m, X, G), reference(X, G)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-14)
    check_fused("t23", m, X)


def test_check_fused_catches_a_fused_step_that_overwrites_gradients():
    m = model(OverwritesGrads)
    # really wrong: two backwards (GDTrainer's batches, a penalty added first) must add
    got, want = grads(m, X, G, times=2), reference(X, G, times=2)
    assert not np.allclose(got["0.weight"], want["0.weight"])
    with pytest.raises(ConformanceError):
        check_fused("t23", model(OverwritesGrads), X)


def test_check_fused_catches_a_fused_step_that_writes_into_dl_dy():
    m = model(WritesDlDy)
    m.train()
    m.forward(X)
    g = G.copy()
    m.backward(g)
    assert not np.array_equal(g, G)   # really wrong: the caller's array changed
    with pytest.raises(ConformanceError):
        check_fused("t23", model(WritesDlDy), X)
