"""Every registered layer, built-in or plugin, passes the conformance kit."""
import numpy as np
import pytest

from nnumba import Layer, testing
from nnumba.errors import NoGradientError
from nnumba.registry import get_registry

LAYERS = sorted(get_registry().entries("layer").items())


@pytest.mark.parametrize("name,entry", LAYERS, ids=[name for name, _ in LAYERS])
def test_registered_layer_conforms(name, entry):
    testing.check_all(entry.obj)


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


@pytest.mark.parametrize("cls,message", [(_WrongGradient, "finite differences"),
                                         (_Overwrites, "accumulate"),
                                         (_NoChecks, "int64")])
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
