"""An author's usual slips with a layer or a loss are named by the layer, the kit or the
model, in one line that says what to do; none is a silent wrong answer."""
import numpy as np
import pytest

import nnumba
from nnumba.layers import Linear
from nnumba.layers.contract import ContractError
from nnumba.layers.validation import integer


class Affine(nnumba.Layer):
    """y = x * gamma + beta per feature, with the kernel set only."""
    examples = [({"features": 3}, (4, 3))]

    def __init__(self, features: int):
        super().__init__()
        self.features = integer("Affine", "features", features)
        self.gamma = self.add_param("gamma", (self.features,))
        self.beta = self.add_param("beta", (self.features,))

    def reset_parameters(self, rng):
        self.gamma.value[...] = rng.uniform(0.5, 1.5, self.features)
        self.beta.value[...] = rng.uniform(-0.5, 0.5, self.features)

    def input_shape(self):
        return (self.features,)

    def _forward(self, x):
        k = self.kernels
        g = self._buffer("g", x.shape)
        k.fill(g, 0)
        k.add_bias(g, self.gamma.value)
        y = self._buffer("y", x.shape)
        k.multiply(x.reshape(x.size), g.reshape(g.size), y.reshape(y.size))
        k.add_bias(y, self.beta.value)
        self._x, self._g = x, g
        return y

    def _backward(self, dl_dy):
        k = self.kernels
        t = self._buffer("t", dl_dy.shape)
        k.multiply(dl_dy.reshape(dl_dy.size), self._x.reshape(self._x.size), t.reshape(t.size))
        k.accumulate_bias_grad(t, self.gamma.grad)
        k.accumulate_bias_grad(dl_dy, self.beta.grad)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        k.multiply(dl_dy.reshape(dl_dy.size), self._g.reshape(self._g.size), dx.reshape(dx.size))
        return dx


class Rebinding(Affine):
    def reset_parameters(self, rng):
        self.gamma.value = rng.uniform(0.5, 1.5, self.features)   # the slip: not in place
        self.beta.value[...] = 0


def test_a_parameter_assigned_in_reset_parameters_is_refused_at_construction():
    with pytest.raises(ContractError, match=r"^Rebinding: reset_parameters assigned a new array "
                                            r"to gamma.value; write into it in place "
                                            r"\(gamma.value\[...\] = ...\)"):
        Rebinding(3)


def test_without_the_check_a_model_would_silently_stop_training_the_parameter():
    # What the check prevents: the rebound gamma is no view of the model's buffer.
    model = nnumba.Sequential(Linear(3, 3), Affine(3), seed=0)
    model.layers[1].gamma.value[...] = 2.0
    assert np.shares_memory(model.layers[1].gamma.value, model.flat_params)
    with pytest.raises(ContractError, match=r"Affine #1: reset_parameters"):
        Rebinding.reset_parameters(model.layers[1], np.random.default_rng(0))


def test_a_subclass_calling_super_reset_is_checked_once_and_passes():
    class Child(Affine):
        def reset_parameters(self, rng):
            super().reset_parameters(rng)
            self.beta.value[...] = 0
    layer = Child(2)
    assert np.all(layer.beta.value == 0) and np.all(layer.gamma.value >= 0.5)
