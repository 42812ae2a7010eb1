"""The plugin kits on a batch norm with running statistics (plugin trial 19):
check_model accepts a model whose layer keeps state, check_all warns of the input kept
in a tuple or a copy, and check_float32 covers the evaluation output and the state."""
import pickle
import types
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.layers.validation import integer, number


class CandBatchNorm(Layer):
    """Batch norm over (N, D): batch statistics in training, running ones in eval
    (PyTorch's BatchNorm1d: biased variance to normalise, unbiased to track)."""

    examples = [({"features": 4}, (6, 4)), ({"features": 3, "momentum": 0.5}, (5, 3))]
    devices = ("cpu",)
    kept_for_backward = ("_xhat", "_inv_std")

    def __init__(self, features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.features = integer("CandBatchNorm", "features", features)
        self.eps = number("CandBatchNorm", "eps", eps, above=0)
        self.momentum = number("CandBatchNorm", "momentum", momentum, 0, 1)
        self.weight = self.add_param("weight", (self.features,))
        self.bias = self.add_param("bias", (self.features,))
        self.running_mean = self.add_param("running_mean", (self.features,), trainable=False)
        self.running_var = self.add_param("running_var", (self.features,), trainable=False)

    def reset_parameters(self, rng):
        self.weight.value[...] = 1
        self.bias.value[...] = 0
        self.running_mean.value[...] = 0
        self.running_var.value[...] = 1

    def input_shape(self):
        return (self.features,)

    def output_shape(self, input_shape):
        return (self.features,)

    def _forward(self, x):
        dt, n = x.dtype, x.shape[0]
        if self.training:
            mean, var = x.mean(axis=0), x.var(axis=0)
            m = dt.type(self.momentum)
            unbiased = var * (n / (n - 1)) if n > 1 else var
            self.running_mean.value[...] = (1 - m) * self.running_mean.value + m * mean
            self.running_var.value[...] = (1 - m) * self.running_var.value + m * unbiased
        else:
            mean, var = self.running_mean.value, self.running_var.value
        inv_std = (1.0 / np.sqrt(var + dt.type(self.eps))).astype(dt)
        xhat = ((x - mean) * inv_std).astype(dt)
        y = self._buffer("y", x.shape)
        y[...] = xhat * self.weight.value + self.bias.value
        self._xhat, self._inv_std, self._batch_stats = xhat, inv_std, self.training
        return y

    def _backward(self, dl_dy):
        xhat, inv_std = self._xhat, self._inv_std
        self.weight.grad[...] += (dl_dy * xhat).sum(axis=0)
        self.bias.grad[...] += dl_dy.sum(axis=0)
        if not self.needs_input_grad:
            return None
        g = dl_dy * self.weight.value
        dl_dx = self._buffer("dx", dl_dy.shape)
        if self._batch_stats:
            n = dl_dy.shape[0]
            dl_dx[...] = inv_std / n * (n * g - g.sum(axis=0) - xhat * (g * xhat).sum(axis=0))
        else:
            dl_dx[...] = g * inv_std
        return dl_dx


def cand_bn_net(inputs: int = 6, hidden: int = 5, classes: int = 3):
    """Linear, CandBatchNorm, ReLU, Linear."""
    return [{"type": "Linear", "in_features": inputs, "out_features": hidden},
            {"type": "CandBatchNorm", "features": hidden}, {"type": "ReLU"},
            {"type": "Linear", "in_features": hidden, "out_features": classes}]


@pytest.fixture
def registered():
    from nnumba.models import NamedModel
    model = NamedModel(cand_bn_net, input_shape=lambda inputs=6, **o: (inputs,))
    plugin = types.SimpleNamespace(
        nnumba_register_layers=nnumba.hookimpl(lambda: {"CandBatchNorm": CandBatchNorm}),
        nnumba_register_models=nnumba.hookimpl(lambda: {"cand-bn-net": model}))
    nnumba.register_plugin(plugin, "trial19cand")
    yield
    nnumba.unregister_plugin("trial19cand")


def test_the_batch_norm_here_passes_the_layer_kit():
    """The layer the tests below build on is right: it passes check_all, warning of
    nothing it keeps (it keeps only what kept_for_backward names)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        testing.check_all(CandBatchNorm)
    assert not [w for w in caught if "kept_for_backward" in str(w.message)]


def test_the_batch_norm_here_is_pytorchs():
    """The layer computes what torch.nn.BatchNorm1d does, in both modes."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, g = rng.normal(2, 3, (7, 5)), rng.normal(size=(7, 5))
    layer = CandBatchNorm(5, momentum=0.3).astype("float64")
    t = torch.nn.BatchNorm1d(5, momentum=0.3, dtype=torch.float64)
    xt = torch.tensor(x, requires_grad=True)
    yt = t(xt)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(layer.forward(x.copy()), yt.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.backward(g.copy()), xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.running_var.value, t.running_var.numpy(), atol=1e-12)
    layer.eval(), t.eval()
    np.testing.assert_allclose(layer.forward(x.copy()), t(torch.tensor(x)).detach().numpy(),
                               atol=1e-12)


def test_check_model_accepts_a_model_whose_layer_keeps_running_statistics(registered, tmp_path):
    """check_model rebuilds the model from its spec with every parameter, state
    included: a model with a batch norm whose running statistics a training forward
    moved computes the same after a save/load round trip, so the kit accepts it."""
    model = nnumba.build("cand-bn-net", seed=0)
    x = np.random.default_rng(0).standard_normal((2, 6)).astype(model.dtype)
    model.forward(x)                               # as check_model does: the state moves
    nnumba.save(model, tmp_path / "m.npz")
    twin = nnumba.load_model(tmp_path / "m.npz")
    assert np.array_equal(twin.predict(x), model.predict(x))   # the reference: a saved file
    testing.check_model("cand-bn-net")


class MisSpec(CandBatchNorm):
    """Its spec leaves out its factor, so the layer the spec builds computes otherwise."""

    def __init__(self, features: int, factor: float = 1.0):
        super().__init__(features)
        self.factor = factor

    def config(self):
        return {"features": self.features}

    def _forward(self, x):
        y = super()._forward(x)
        y[...] = y * self.factor
        return y


def test_check_model_still_refuses_a_spec_that_builds_another_computation():
    """A model whose spec rebuilds a layer that computes otherwise still fails."""
    from nnumba.models import NamedModel

    def net(inputs: int = 6, classes: int = 3):
        return [{"type": "Linear", "in_features": inputs, "out_features": classes},
                {"type": "MisSpec", "features": classes, "factor": 3.0}]

    model = NamedModel(net, input_shape=lambda inputs=6, **o: (inputs,))
    plugin = types.SimpleNamespace(
        nnumba_register_layers=nnumba.hookimpl(lambda: {"MisSpec": MisSpec}),
        nnumba_register_models=nnumba.hookimpl(lambda: {"cand-misspec": model}))
    nnumba.register_plugin(plugin, "trial19misspec")
    try:
        with pytest.raises(testing.ConformanceError, match="computes otherwise"):
            testing.check_model("cand-misspec")
    finally:
        nnumba.unregister_plugin("trial19misspec")


class TupleCache(CandBatchNorm):
    def _forward(self, x):
        self._cache = (x, self.features)           # the input, in a tuple
        return super()._forward(x)


class CopyCache(CandBatchNorm):
    def _forward(self, x):
        self._saved = x.copy()                     # a copy of the input
        return super()._forward(x)


class CastCache(CandBatchNorm):
    def _forward(self, x):
        self._x64 = {"x": x.astype(np.float64)}    # a float64 copy, in a dict
        return super()._forward(x)


@pytest.mark.parametrize("cls,attr", [(TupleCache, "_cache"), (CopyCache, "_saved"),
                                      (CastCache, "_x64")])
def test_check_all_warns_of_the_input_kept_in_a_tuple_or_a_copy(cls, attr):
    """check_all warns of an attribute whose pickle holds the input of the last
    forward, whether it keeps the array itself, a copy, or either inside a container:
    a pickled estimator would carry its last batch's samples."""
    layer = cls(4).astype("float64")
    x = np.random.default_rng(0).normal(size=(6, 4))
    layer.forward(x.copy())
    assert x.tobytes() in pickle.dumps(layer)      # the reference: the pickle holds x
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        testing.check_all(cls)
    assert any(attr in str(w.message) and "kept_for_backward" in str(w.message)
               for w in caught), [str(w.message)[:120] for w in caught]


class EvalFloat16(CandBatchNorm):
    """In float32, rounds its evaluation output through float16."""

    def _forward(self, x):
        y = super()._forward(x)
        if not self.training and y.dtype == np.float32:
            y[...] = y.astype(np.float16)          # a float16 detour in evaluation only
        return y


class StateFloat16(CandBatchNorm):
    """In float32, keeps its running mean to float16 precision."""

    def _forward(self, x):
        y = super()._forward(x)
        if self.training and y.dtype == np.float32:
            self.running_mean.value[...] = self.running_mean.value.astype(np.float16)
        return y


@pytest.mark.parametrize("cls", [EvalFloat16, StateFloat16])
def test_check_float32_covers_evaluation_mode_and_the_state(cls):
    """The float32 check compares the evaluation output (what predict returns) and the
    state a training forward leaves with the float64 layer's: a float32 copy that
    takes a float16 detour in either fails check_all, though its training output and
    gradients are right."""
    rng = np.random.default_rng(0)
    x = rng.normal(1, 2, (6, 4))
    ref, bad = cls(4).astype("float64"), cls(4)    # float64 and float32 copies
    for _ in range(3):
        ref.forward(x.copy()), bad.forward(x.astype(np.float32))
    ref.eval(), bad.eval()
    want, got = ref.forward(x.copy()), bad.forward(x.astype(np.float32))
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err > 100 * np.finfo(np.float32).eps    # the reference: far past float32's
    with pytest.raises(testing.ConformanceError, match="in float32, the (state|output in ev)"):
        testing.check_all(cls)
