"""What a fifth plugin author, working from the docs alone, found: a layer that
holds a layer trained nothing silently, and the kit let a float64 gradient
through in a float32 loss or layer, which training then blamed on another."""
import numpy as np
import pytest

from nnumba import ContractError, DTypeError, ShapeError, testing
from nnumba.layers import Layer, Linear, ReLU
from nnumba.losses import MSE
from nnumba.model import Sequential


class Residual(Layer):
    """x + Linear(x), with the Linear kept as an attribute: the slip under test."""
    examples = [({}, (3, 4))]

    def __init__(self):
        super().__init__()
        self.inner = Linear(4, 4)

    def _forward(self, x):
        return self.inner.forward(x) + x

    def _backward(self, dl_dy):
        return self.inner.backward(dl_dy) + dl_dy


class Branches(Residual):
    def __init__(self):
        Layer.__init__(self)
        self.branches = [ReLU(), Linear(4, 4)]


@pytest.mark.parametrize("cls, attr", [(Residual, "Linear, in its attribute 'inner'"),
                                       (Branches, "ReLU, in its attribute 'branches'")])
def test_a_layer_holding_a_layer_is_refused_by_the_model_and_the_kit(cls, attr):
    with pytest.raises(ContractError, match=f"holds a layer, {attr}"):
        Sequential(Linear(4, 4), cls())
    with pytest.raises(testing.ConformanceError, match=f"holds a layer, {attr}"):
        testing.check_all(cls)


class WidensDx(Layer):
    """An elementwise layer whose input gradient comes back in float64."""
    examples = [({}, (5, 4))]

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        self.kernels.scale(x.reshape(x.size), x.dtype.type(2), y.reshape(y.size))
        return y

    def _backward(self, dl_dy):
        return dl_dy * 2.0 if dl_dy.dtype == np.float64 else dl_dy.astype(np.float64) * 2


def test_the_kit_checks_the_input_gradients_dtype_in_float32():
    with pytest.raises(testing.ConformanceError, match="a float32 backward gave a float64 "
                                                       "input gradient"):
        testing.check_all(WidensDx)
    model = Sequential(Linear(4, 4), WidensDx())  # a model names the layer and the dtype
    model.forward(np.ones((5, 4), np.float32))
    with pytest.raises(ShapeError, match="WidensDx #1 returned a gradient float64 .* for a "
                                         "float32 input"):
        model.backward(np.ones((5, 4), np.float32))


class WideMSE(MSE):
    """MSE whose gradient comes back in float64 for float32 predictions."""

    def backward(self, weight=1.0):
        return np.asarray(super().backward(weight), np.float64)


def test_the_kit_checks_a_losss_gradient_dtype_and_a_model_names_the_gradient():
    with pytest.raises(testing.ConformanceError, match="float32 predictions give a float64 "
                                                       "gradient"):
        testing.check_loss(WideMSE)
    model = Sequential(Linear(3, 2))
    loss = WideMSE()
    loss.forward(model.forward(np.ones((4, 3), np.float32)), np.zeros((4, 2), np.float32))
    with pytest.raises(DTypeError, match="backward\\(\\) got a gradient of dtype float64; "
                                         "the model computes in float32"):
        model.backward(loss.backward())


class ChannelScale(Layer):
    """y = scale[c] * x on (N, C, ...): the per-channel layer two plugin authors could
    not declare the input of (numpy body: CPU only)."""
    devices = ("cpu",)
    examples = [({"channels": 3}, (2, 3)), ({"channels": 3}, (2, 3, 4)),
                ({"channels": 2}, (2, 2, 3, 3))]

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.scale = self.add_param("scale", (channels,))

    def reset_parameters(self, rng):
        self.scale.value[...] = rng.normal(size=self.channels)

    def input_shape(self):
        return (self.channels, ...)

    def _per_channel(self, ndim):
        return self.scale.value.reshape((1, -1) + (1,) * (ndim - 2))

    def _forward(self, x):
        self._x = x
        return (x * self._per_channel(x.ndim)).astype(x.dtype)

    def _backward(self, dl_dy):
        axes = (0,) + tuple(range(2, dl_dy.ndim))
        self.scale.grad += (dl_dy * self._x).sum(axis=axes).astype(self.dtype)
        if self.needs_input_grad:
            return (dl_dy * self._per_channel(dl_dy.ndim)).astype(self.dtype)
        return None


def test_input_shape_may_end_in_ellipsis_for_any_further_axes():
    testing.check_all(ChannelScale)  # gradients, and a wrong channel count refused
    layer = ChannelScale(3)
    for shape in [(2, 3), (2, 3, 5), (2, 3, 4, 4)]:
        assert layer.forward(np.ones(shape, np.float32)).shape == shape
    with pytest.raises(ShapeError, match=r"ChannelScale.*\(N, 3, \.\.\.\), got \(2, 4, 5\)"):
        layer.forward(np.ones((2, 4, 5), np.float32))
    with pytest.raises(ShapeError):
        layer.forward(np.ones((2,), np.float32))
