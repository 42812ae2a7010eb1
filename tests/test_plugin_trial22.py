"""Plugin trial 22: a fused step with state (a Linear followed by a batch norm), written
from docs/plugins.md alone. check_model's fused-step check ran the step asked for its
input gradient only (a first step is not), compared no state, ran in training mode
only and once on fresh weights, and never warned of a kept input; check_all checked no
evaluation-mode gradient. Each test first shows, against torch (float64), that the
mutant is wrong where a user sees it, then that the kit says so.
"""
import pickle
import warnings

import numpy as np
import pytest
torch = pytest.importorskip("torch")

import nnumba
from nnumba import Layer, hookimpl, testing
from nnumba.layers import Linear
from nnumba.losses import CrossEntropy
from nnumba.models import NamedModel



@pytest.fixture(autouse=True)
def _torch_in_float64():
    """torch's modules in float64 here, and as they were for the other test files."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


# ---------------------------------------------------------------- the plugin (copied)
def _bn_forward(layer, h):
    w, b, dt = layer.weight.value, layer.bias.value, h.dtype.type
    if layer.training:
        n = h.shape[0]
        mean, var = h.mean(axis=0), h.var(axis=0)
        inv_std = dt(1) / np.sqrt(var + dt(layer.eps))
        m = dt(layer.momentum)
        rm, rv = layer.running_mean.value, layer.running_var.value
        rm[...] = (dt(1) - m) * rm + m * mean
        rv[...] = (dt(1) - m) * rv + m * (var * dt(n / (n - 1)) if n > 1 else var)
    else:
        mean = layer.running_mean.value
        inv_std = dt(1) / np.sqrt(layer.running_var.value + dt(layer.eps))
    xhat = (h - mean) * inv_std
    return xhat * w + b, xhat, inv_std


def _bn_backward(layer, dl_dy, xhat, inv_std, training):
    layer.weight.grad[...] += (dl_dy * xhat).sum(axis=0)
    layer.bias.grad[...] += dl_dy.sum(axis=0)
    dxhat = dl_dy * layer.weight.value
    if training:
        return inv_std * (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0))
    return dxhat * inv_std


class BatchNorm1d22(Layer):
    """Batch normalisation over (N, D) with running statistics."""
    examples = [({"features": 4}, (5, 4)), ({"features": 3, "momentum": 0.5}, (7, 3))]
    devices = ("cpu",)
    kept_for_backward = ("_xhat", "_inv_std")
    fused_class = None   # set per test

    def __init__(self, features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.features, self.eps, self.momentum = features, eps, momentum
        self.weight = self.add_param("weight", (features,))
        self.bias = self.add_param("bias", (features,))
        self.running_mean = self.add_param("running_mean", (features,), trainable=False)
        self.running_var = self.add_param("running_var", (features,), trainable=False)

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
        y = self._buffer("y", x.shape)
        y[...], self._xhat, self._inv_std = _bn_forward(self, x)
        return y

    def _backward(self, dl_dy):
        dx = _bn_backward(self, dl_dy, self._xhat, self._inv_std, self.training)
        if not self.needs_input_grad:
            return None
        out = self._buffer("dx", dl_dy.shape)
        out[...] = dx
        return out

    def fuse_after(self, previous):
        if type(previous) is Linear and self.fused_class is not None:
            return self.fused_class(previous, self)
        return None


class LinearBatchNorm22(Layer):
    """Linear then BatchNorm1d22 in one step (correct)."""
    devices = ("cpu",)
    kept_for_backward = ("_x", "_xhat", "_inv_std")

    def __init__(self, linear, bn):
        super().__init__()
        self.linear, self.bn = linear, bn
        self.label = f"{linear.label} + {bn.label}"

    def input_shape(self):
        return self.linear.input_shape()

    def output_shape(self, input_shape):
        return (self.bn.features,)

    def _weight(self):
        return self.linear.params()["weight"].value

    def _forward(self, x):
        lp = self.linear.params()
        h = self._buffer("h", (x.shape[0], self.bn.features))
        self.kernels.matmul(x, self._weight(), h, trans_b=True)
        self.kernels.add_bias(h, lp["bias"].value)
        y = self._buffer("y", h.shape)
        y[...], self._xhat, self._inv_std = _bn_forward(self.bn, h)
        self._x = x
        return y

    def _backward(self, dl_dy):
        k, lp = self.kernels, self.linear.params()
        dh = self._buffer("dh", dl_dy.shape)
        dh[...] = _bn_backward(self.bn, dl_dy, self._xhat, self._inv_std, self.training)
        k.matmul(dh, self._x, lp["weight"].grad, trans_a=True, accumulate=True)
        k.accumulate_bias_grad(dh, lp["bias"].grad)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", self._x.shape)
        k.matmul(dh, lp["weight"].value, dx)
        return dx


# ---------------------------------------------------------------- mutants of the fused step
class ParamGradsNeedInputGrad(LinearBatchNorm22):
    """returns None before the parameter gradients when needs_input_grad is False"""
    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        return super()._backward(dl_dy)


def _keep_state(fwd):
    def run(self, x):
        rm, rv = self.bn.running_mean.value.copy(), self.bn.running_var.value.copy()
        y = LinearBatchNorm22._forward(self, x)
        fwd(self, x, rm, rv)
        return y
    return run


class NoRunningUpdate(LinearBatchNorm22):
    """fused training forward leaves the running statistics alone"""
    def _forward(self, x):
        rm, rv = self.bn.running_mean.value.copy(), self.bn.running_var.value.copy()
        y = super()._forward(x)
        self.bn.running_mean.value[...], self.bn.running_var.value[...] = rm, rv
        return y


class StateFromConstruction(LinearBatchNorm22):
    """updates running-stat arrays it took at construction (stale once the model rebinds them)"""
    def __init__(self, linear, bn):
        super().__init__(linear, bn)
        self._rm, self._rv = bn.running_mean.value, bn.running_var.value

    def _forward(self, x):
        rm, rv = self.bn.running_mean.value.copy(), self.bn.running_var.value.copy()
        y = super()._forward(x)
        new_m, new_v = self.bn.running_mean.value.copy(), self.bn.running_var.value.copy()
        self.bn.running_mean.value[...], self.bn.running_var.value[...] = rm, rv
        self._rm[...], self._rv[...] = new_m, new_v
        return y


class BiasedRunningVar(LinearBatchNorm22):
    """tracks the biased variance in the fused path (the layer alone: the unbiased one)"""
    def _forward(self, x):
        rv = self.bn.running_var.value.copy()
        y = super()._forward(x)
        n, m = x.shape[0], self.bn.momentum
        new = self.bn.running_var.value
        new[...] = (1 - m) * rv + (new - (1 - m) * rv) * (n - 1) / n
        return y


class EvalForgetsBias(LinearBatchNorm22):
    """evaluation mode leaves out the batch norm's bias (training mode exact)"""
    def _forward(self, x):
        y = super()._forward(x)
        if not self.training:
            y -= self.bn.bias.value
        return y


class CopyAtFirstForward(LinearBatchNorm22):
    """copies the Linear's weight at its first forward and computes with that copy after"""
    _W = None

    def _weight(self):
        if self._W is None:
            self._W = np.array(self.linear.params()["weight"].value, copy=True)
        return self._W


class KeepsInputUnnamed(LinearBatchNorm22):
    """keeps its input under an attribute kept_for_backward does not name"""
    kept_for_backward = ("_xhat", "_inv_std")


class BNKeeps22(BatchNorm1d22):   # module level, so that a model holding it pickles
    fused_class = KeepsInputUnnamed
    type_name = "BNMut22"


# ---------------------------------------------------------------- helpers
SPEC = [{"type": "Linear", "in_features": 6, "out_features": 5},
        {"type": "BNMut22", "features": 5}, {"type": "ReLU"},
        {"type": "Linear", "in_features": 5, "out_features": 5},
        {"type": "BNMut22", "features": 5}, {"type": "ReLU"},
        {"type": "Linear", "in_features": 5, "out_features": 3}]


@pytest.fixture
def registered(request):
    fused = request.param
    if isinstance(fused, type) and issubclass(fused, BatchNorm1d22):
        bn, fused = fused, fused.fused_class
    else:
        bn = type("BNMut22", (BatchNorm1d22,), {"fused_class": fused, "type_name": "BNMut22"})

    def net(inputs: int = 6, classes: int = 3):
        """Linear, BN, ReLU twice, then Linear."""
        spec = [dict(d) for d in SPEC]
        spec[0]["in_features"], spec[-1]["out_features"] = inputs, classes
        return spec

    class Plugin:
        @staticmethod
        @hookimpl
        def nnumba_register_layers():
            return {"BNMut22": bn}

        @staticmethod
        @hookimpl
        def nnumba_register_models():
            return {"mut-net22": NamedModel(net, input_shape=lambda inputs=6, **o: (inputs,))}

    nnumba.register_plugin(Plugin, "trial22mut")
    try:
        yield fused
    finally:
        nnumba.unregister_plugin("trial22mut")


def torch_twin(model):
    t = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(),
                            torch.nn.Linear(5, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(),
                            torch.nn.Linear(5, 3))
    p = dict(model.params())
    for i, mod in enumerate(t):
        for name, tp in list(mod.named_parameters()) + list(mod.named_buffers()):
            if f"{i}.{name}" in p:
                tp.data.copy_(torch.from_numpy(np.array(p[f"{i}.{name}"].value, np.float64)))
    return t


def torch_state(t):
    return {f"{i}.{n}": v.detach().numpy() for i, mod in enumerate(t)
            for n, v in list(mod.named_parameters()) + list(mod.named_buffers())
            if n != "num_batches_tracked"}


RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 6)) * 2 + 1
Y = RNG.integers(0, 3, 40)


def sgd_against_torch(steps=4):
    """max |nnumba - torch| over every parameter and state after `steps` SGD steps, and
    over the eval-mode outputs."""
    model = nnumba.build("mut-net22", seed=0).astype("float64")
    assert any(isinstance(s, LinearBatchNorm22) for s in model.steps)
    t = torch_twin(model)
    nnumba.SGDTrainer(model, CrossEntropy(), lr=0.1, momentum=0.9, batch_size=10,
                      shuffle=False, seed=0).fit(X[:10 * steps], Y[:10 * steps], epochs=1)
    opt = torch.optim.SGD(t.parameters(), lr=0.1, momentum=0.9)
    t.train()
    for s in range(0, 10 * steps, 10):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(t(torch.from_numpy(X[s:s + 10])),
                                          torch.from_numpy(Y[s:s + 10])).backward()
        opt.step()
    ts = torch_state(t)
    params = max(np.abs(np.array(p.value) - ts[k]).max() for k, p in model.params())
    t.eval()
    out = np.abs(model.predict(X) - t(torch.from_numpy(X)).detach().numpy()).max()
    return params, out


def test_the_correct_plugin_matches_torch_and_passes():
    bn = type("BNMut22", (BatchNorm1d22,), {"fused_class": LinearBatchNorm22,
                                            "type_name": "BNMut22"})
    testing.check_all(bn)


@pytest.mark.parametrize("registered", [LinearBatchNorm22], indirect=True)
def test_reference_plugin(registered):
    params, out = sgd_against_torch()
    assert params < 1e-12 and out < 1e-12
    testing.check_model("mut-net22")


# ---------------------------------------------------------------- the kit's gaps
@pytest.mark.parametrize("registered", [ParamGradsNeedInputGrad], indirect=True)
def test_check_model_runs_fused_steps_with_the_models_needs_input_grad(registered):
    """the model's first step gets needs_input_grad=False; a fused step that
    returns before its parameter gradients then leaves the first Linear untrained.
    check_fused sets needs_input_grad=True on the step, so it never sees it."""
    model = nnumba.build("mut-net22", seed=0).astype("float64")
    w0 = np.array(dict(model.params())["0.weight"].value)
    params, _ = sgd_against_torch()
    assert params > 1e-3                                   # torch trains layer 0; this does not
    nnumba.SGDTrainer(model, CrossEntropy(), lr=0.1, batch_size=10).fit(X, Y, epochs=1)
    assert np.array_equal(np.array(dict(model.params())["0.weight"].value), w0)
    with pytest.raises(testing.ConformanceError, match="0.weight|Linear #0"):
        testing.check_model("mut-net22")


@pytest.mark.parametrize("registered", [NoRunningUpdate, StateFromConstruction,
                                        BiasedRunningVar], indirect=True)
def test_check_model_compares_the_state_a_fused_step_leaves(registered):
    """check_fused compares outputs and gradients, never the trainable=False
    state the fused training forward leaves against the one its layers leave."""
    params, out = sgd_against_torch()
    assert params > 1e-3 and out > 1e-3                    # running stats and predict wrong
    with pytest.raises(testing.ConformanceError, match="running_(mean|var)|state"):
        testing.check_model("mut-net22")


@pytest.mark.parametrize("registered", [EvalForgetsBias], indirect=True)
def test_check_model_compares_fused_steps_in_evaluation_mode(registered):
    """check_fused runs the comparison in training mode only."""
    params, out = sgd_against_torch()
    assert params < 1e-12 and out > 1e-3                   # training exact, predict wrong
    with pytest.raises(testing.ConformanceError, match="evaluation|eval"):
        testing.check_model("mut-net22")


@pytest.mark.parametrize("registered", [CopyAtFirstForward], indirect=True)
def test_check_model_catches_a_fused_step_computing_with_a_stale_copy(registered):
    """check_fused runs one forward on a fresh copy, so a weight copied at the
    first forward is still current; after one SGD step the step computes with old weights."""
    params, out = sgd_against_torch()
    assert params > 1e-3 and out > 1e-3
    with pytest.raises(testing.ConformanceError):
        testing.check_model("mut-net22")


@pytest.mark.parametrize("registered", [BNKeeps22], indirect=True)
def test_check_model_warns_of_a_fused_step_keeping_its_input_unnamed(registered):
    """check_all's kept-array warning never sees a fused step: a model pickled
    after a forward holds the samples it saw."""
    model = nnumba.build("mut-net22", seed=0)
    x = np.random.default_rng(7).normal(size=(8, 6)).astype(np.float32)
    model.train()
    model.forward(x)
    blob = pickle.dumps(model)
    assert any(x[i].tobytes() in blob for i in range(len(x)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        testing.check_model("mut-net22")
    assert any("_x" in str(w.message) for w in caught), [str(w.message) for w in caught]


class EvalGradientWrong(BatchNorm1d22):
    """evaluation-mode backward uses the training-mode (batch statistics) formula"""
    def _backward(self, dl_dy):
        dx = _bn_backward(self, dl_dy, self._xhat, self._inv_std, True)
        if not self.needs_input_grad:
            return None
        out = self._buffer("dx", dl_dy.shape)
        out[...] = dx
        return out


def test_check_all_checks_the_evaluation_mode_gradient():
    """the guide says an evaluation-mode backward is the gradient of what that
    forward computed, but check_all checks gradients in training mode only."""
    layer = EvalGradientWrong(4).astype("float64")
    layer.reset_parameters(np.random.default_rng(0))
    layer.running_mean.value[...] = [0.5, -1, 2, 0]
    layer.running_var.value[...] = [2, 0.5, 1, 3]
    layer.eval()
    layer.set_flags(needs_input_grad=True)
    x = np.random.default_rng(1).normal(size=(5, 4))
    tb = torch.nn.BatchNorm1d(4).eval()
    tb.running_mean.copy_(torch.tensor([0.5, -1, 2, 0]))
    tb.running_var.copy_(torch.tensor([2, 0.5, 1, 3]))
    tx = torch.from_numpy(x).requires_grad_()
    g = np.random.default_rng(2).normal(size=(5, 4))
    tb(tx).backward(torch.from_numpy(g))
    layer.run_forward(x)
    assert np.abs(np.array(layer.run_backward(g.copy())) - tx.grad.numpy()).max() > 1e-2
    with pytest.raises(testing.ConformanceError):
        testing.check_all(EvalGradientWrong)
