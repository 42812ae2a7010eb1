"""Every registered layer and loss, built-in or plugin, passes its conformance kit,
and the kits catch what they are for."""
import numpy as np
import pytest

from nnumba import Layer, testing
from nnumba.errors import NoGradientError
from nnumba.losses import Loss, MSE
from nnumba.registry import get_registry

LAYERS = sorted(get_registry().entries("layer").items())
LOSSES = sorted(get_registry().entries("loss").items())


@pytest.mark.parametrize("name,entry", LAYERS, ids=[name for name, _ in LAYERS])
def test_registered_layer_conforms(name, entry):
    testing.check_all(entry.obj)


@pytest.mark.parametrize("name,entry", LOSSES, ids=[name for name, _ in LOSSES])
def test_registered_loss_conforms(name, entry):
    testing.check_loss(entry.obj)


class _WrongGradient(Layer):
    """Doubles its input but claims the gradient is dl_dy: the kit must catch it."""
    examples = [({}, (2, 3))]

    def _forward(self, x):
        return 2 * x

    def _backward(self, dl_dy):
        return dl_dy


class _Overwrites(Layer):
    """Scales by a parameter but overwrites its gradient instead of accumulating."""
    examples = [({}, (2, 3))]

    def __init__(self):
        super().__init__()
        self.a = self.add_param("a", np.ones(1))

    def _forward(self, x):
        self._x = x
        return x * self.a.value[0]

    def _backward(self, dl_dy):
        self.a.grad[...] = np.sum(dl_dy * self._x)
        return dl_dy * self.a.value[0]


class _NoChecks(Layer):
    """Accepts any shape and never validates NaN: fine for shapes, but NaN must still fail."""
    examples = [({}, (2, 3))]

    def check_input(self, x, *, check_finite=True):
        pass

    def _forward(self, x):
        return x + 1

    def _backward(self, dl_dy):
        return dl_dy


class _SkipsParamsAsFirstLayer(Layer):
    """Returns before adding its gradient when no input gradient is wanted: as a
    model's first layer it would never train."""
    examples = [({}, (2, 3))]

    def __init__(self):
        super().__init__()
        self.a = self.add_param("a", (1,))

    def reset_parameters(self, rng):
        self.a.value[...] = 1.5

    def _forward(self, x):
        self._x = x
        return x * self.a.value[0]

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        self.a.grad += np.sum(dl_dy * self._x)
        return dl_dy * self.a.value[0]


class _KeepsOneBlock(Layer):
    """Adds only the last 512 samples' share of its gradient, as a parallel loop
    whose threads overwrite each other's sums would: right at the example's batch,
    wrong at a large one."""
    examples = [({}, (2, 3))]

    def __init__(self):
        super().__init__()
        self.a = self.add_param("a", (1,))

    def _forward(self, x):
        self._x = x
        return x * self.a.value[0]

    def _backward(self, dl_dy):
        self.a.grad += np.sum(dl_dy[-512:] * self._x[-512:])
        return dl_dy * self.a.value[0]


class _Unregistered(Layer):
    """Correct, but in no plugin: the kit registers it for the save/load check."""
    examples = [({}, (2, 3))]

    def _forward(self, x):
        return 3 * x

    def _backward(self, dl_dy):
        return 3 * dl_dy if self.needs_input_grad else None


def test_kit_checks_a_layer_that_is_not_registered():
    testing.check_all(_Unregistered)
    assert "_Unregistered" not in get_registry().entries("layer")


@pytest.mark.parametrize("cls,message", [(_WrongGradient, "finite differences"),
                                         (_Overwrites, "accumulate"),
                                         (_NoChecks, "int64"),
                                         (_SkipsParamsAsFirstLayer, "first layer"),
                                         (_KeepsOneBlock, "race")])
def test_kit_catches_broken_layers(cls, message):
    with pytest.raises(testing.ConformanceError, match=message):
        testing.check_all(cls)


def test_kit_needs_examples():
    class Bare(Layer):
        pass
    with pytest.raises(testing.ConformanceError, match="no examples"):
        testing.check_all(Bare)


def test_threshold_backward_says_no_gradient():
    from nnumba.layers import Threshold
    layer = Threshold()
    layer.forward(np.array([[-1.0, 0.0, 2.0]], np.float32))
    with pytest.raises(NoGradientError, match="Threshold"):
        layer.backward(np.ones((1, 3), np.float32))


class _HalfGradient(MSE):
    """The right value, half the gradient."""
    type_name = "HalfGradient"

    def _compute(self, y_hat, y, scale):
        losses, grad = super()._compute(y_hat, y, scale)
        grad *= 0.5
        return losses, grad


class _NoExamples(Loss):
    pass


def test_loss_kit_catches_a_wrong_gradient_and_needs_examples():
    with pytest.raises(testing.ConformanceError, match="finite differences"):
        testing.check_loss(_HalfGradient)
    with pytest.raises(testing.ConformanceError, match="no examples"):
        testing.check_loss(_NoExamples)
