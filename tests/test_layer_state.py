"""State a layer updates itself (a batch norm's running statistics) is a parameter
with ``trainable=False``: saved, loaded, converted and copied with the model, never
touched by the optimizer (weight decay included), not counted as a parameter
(plugin trial 10: as a trainable parameter, weight decay shrank it)."""
import numpy as np
import pytest

import nnumba
from nnumba import io, testing
from nnumba.errors import SpecError
from nnumba.layers import Layer
from nnumba.losses import MSE
from nnumba.summary import summarize
from nnumba.train import SGDTrainer


class RunningNorm(Layer):
    """Batch norm over the features of (N, D), with running statistics in eval mode
    (PyTorch's rule: the biased variance normalises, the unbiased one is kept)."""
    type_name = "RunningNorm"
    examples = [({"features": 3}, (5, 3))]

    def __init__(self, features: int, momentum: float = 0.1):
        super().__init__()
        self.features, self.momentum = features, momentum
        self.gamma = self.add_param("gamma", (features,))
        self.beta = self.add_param("beta", (features,))
        self.mean = self.add_param("running_mean", (features,), trainable=False)
        self.var = self.add_param("running_var", (features,), trainable=False)

    def reset_parameters(self, rng):
        self.gamma.value[...] = rng.uniform(0.5, 1.5, self.features)
        self.beta.value[...] = rng.uniform(-0.5, 0.5, self.features)
        self.mean.value[...] = 0
        self.var.value[...] = 1

    def input_shape(self):
        return (self.features,)

    def _forward(self, x):
        if self.training:
            mean, var, n, m = x.mean(axis=0), x.var(axis=0), len(x), self.momentum
            self.mean.value[...] = (1 - m) * self.mean.value + m * mean
            self.var.value[...] = (1 - m) * self.var.value + m * var * n / max(n - 1, 1)
        else:
            mean, var = self.mean.value, self.var.value
        self._inv = 1 / np.sqrt(var + 1e-5)
        self._xhat = (x - mean) * self._inv
        return (self.gamma.value * self._xhat + self.beta.value).astype(x.dtype)

    def _backward(self, g):
        n = g.shape[0]
        self.gamma.grad += (g * self._xhat).sum(axis=0)
        self.beta.grad += g.sum(axis=0)
        gx = g * self.gamma.value
        if not self.training:  # the running statistics are constants
            return (gx * self._inv).astype(g.dtype)
        return (self._inv / n * (n * gx - gx.sum(axis=0) - self._xhat * (
            gx * self._xhat).sum(axis=0))).astype(g.dtype)


class _Plugin:
    @nnumba.hookimpl
    def nnumba_register_layers(self):
        return {"RunningNorm": RunningNorm}


@pytest.fixture
def registered():
    name = nnumba.register_plugin(_Plugin(), "t-running-norm")
    yield
    nnumba.unregister_plugin(name)


def _model():
    return nnumba.Sequential(nnumba.get_layer("Linear")(4, 3), RunningNorm(3), seed=0)


def test_the_kit_passes_a_layer_with_state(registered):
    # and a batch norm at all: its scale gets a gradient of exactly 0 from an upstream
    # gradient of ones, where the kit's batch-sum check compared two rounding errors
    testing.check_all(RunningNorm)


def test_the_optimizer_leaves_the_state_alone_and_counts_it_out():
    model = _model()
    assert model.num_params() == 4 * 3 + 3 + 3 + 3  # Linear, gamma, beta: no statistics
    x = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)
    y = np.zeros((8, 3), np.float32)
    SGDTrainer(model, MSE(), lr=0.1, momentum=0.9, weight_decay=0.5, batch_size=8,
               shuffle=False).fit(x, y, epochs=1)  # one step
    # the statistics are what the one forward set, untouched by the step's weight decay
    layer = model.layers[1]
    h = _model().layers[0].forward(x)  # the Linear's output before its update
    np.testing.assert_allclose(layer.mean.value, 0.1 * h.mean(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(layer.var.value, 0.9 + 0.1 * h.var(axis=0, ddof=1), rtol=1e-5)


def test_state_is_saved_loaded_converted_and_copied(registered, tmp_path):
    model = _model()
    x = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)
    model.forward(x)  # moves the statistics
    want = model.eval().forward(x).copy()
    twin = io.load_model(io.save(model, tmp_path / "m.npz"))
    np.testing.assert_array_equal(twin.eval().forward(x), want)
    np.testing.assert_array_equal(twin.layers[1].mean.value, model.layers[1].mean.value)
    wide = model.copy().astype(np.float64)
    np.testing.assert_allclose(wide.eval().forward(x.astype(np.float64)), want, rtol=1e-5)
    assert summarize(model, (4,)).params == model.num_params()


def test_trainable_must_be_a_flag():
    class Bad(Layer):
        def __init__(self):
            super().__init__()
            self.add_param("s", (2,), trainable="no")
    with pytest.raises(SpecError, match="trainable"):
        Bad()


class _StatsTrainable(RunningNorm):
    """Plugin trial 11's slip: the running statistics declared trainable."""

    def __init__(self, features: int, momentum: float = 0.1):
        Layer.__init__(self)
        self.features, self.momentum = features, momentum
        self.gamma = self.add_param("gamma", (features,))
        self.beta = self.add_param("beta", (features,))
        self.mean = self.add_param("running_mean", (features,))
        self.var = self.add_param("running_var", (features,))


class _EvalOnTheBatch(RunningNorm):
    """The classic batch-norm slip: evaluation normalises by the batch's statistics."""

    def _forward(self, x):
        training, self.training = self.training, True
        try:
            return super()._forward(x)
        finally:
            self.training = training


@pytest.mark.parametrize("cls, said", [
    (_StatsTrainable, "a training forward changed the parameter 'running_mean'"),
    (_EvalOnTheBatch, "in evaluation mode a sample's output depends on the rest of its batch")])
def test_the_kit_catches_state_declared_trainable_and_eval_on_the_batch(cls, said):
    with pytest.raises(testing.ConformanceError, match=said):
        testing.check_all(cls)
