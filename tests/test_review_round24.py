"""Review round 24 of this sitting's own changes: fused steps compared in evaluation
mode too; a fused step standing for four layers holds all four parameters; a model
pickled before fused steps held parameters trains its Linear again; the refusal of a
fused layer names the parameters it misses; check_loss says a loss changed its
predictions in place; save(classes=) takes any mapping by index.
References: torch for the GLU, the layers run one after another, the model's own
parameter list."""
import pickle
import types

import numpy as np
import pytest

import nnumba
from nnumba import Layer, Loss, ShapeError, hookimpl, testing
from nnumba.models import NamedModel

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- plugin pieces
class GLU24r(Layer):
    """a * sigmoid(g) for the two halves a, g of the last axis."""
    examples = [({}, (3, 4))]
    devices = ("cpu",)
    kept_for_backward = ("_a", "_s")
    fused_class = None

    def output_shape(self, input_shape):
        if input_shape[-1] % 2:
            raise ShapeError(f"{self.label}: the last axis must have an even size")
        return (*input_shape[:-1], input_shape[-1] // 2)

    def _forward(self, x):
        h = x.shape[-1] // 2
        s = 1 / (1 + np.exp(-x[..., h:]))
        y = self._buffer("y", x[..., :h].shape)
        np.multiply(x[..., :h], s, out=y)
        self._a, self._s = np.ascontiguousarray(x[..., :h]), s
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        h = dl_dy.shape[-1]
        dx = self._buffer("dx", (*dl_dy.shape[:-1], 2 * h))
        dx[..., :h] = dl_dy * self._s
        dx[..., h:] = dl_dy * self._a * self._s * (1 - self._s)
        return dx

    def fuse_after(self, previous):
        if self.fused_class is not None and type(previous).__name__ == "Linear":
            return self.fused_class(previous)
        return None


class FusedGLU(Layer):
    """Linear + GLU24r in one pass, through previous.params() (docs/plugins.md)."""
    kept_for_backward = ("_x", "_a", "_s")

    def __init__(self, linear=None):
        super().__init__()
        self._lp = linear.params() if linear is not None else {}

    def input_shape(self):
        return (self._lp["weight"].value.shape[1],)

    def output_shape(self, input_shape):
        return (self._lp["weight"].value.shape[0] // 2,)

    def gate(self, z):
        return 1 / (1 + np.exp(-z))

    def _forward(self, x):
        W, b = self._lp["weight"].value, self._lp["bias"].value
        h = W.shape[0] // 2
        z = x @ W.T + b
        self._x, self._a, self._s = x, z[:, :h].copy(), self.gate(z[:, h:])
        y = self._buffer("y", (x.shape[0], h))
        y[...] = self._a * self._s
        return y

    def _backward(self, dl_dy):
        W = self._lp["weight"]
        dz = np.concatenate([dl_dy * self._s, dl_dy * self._a * self._s * (1 - self._s)], 1)
        W.grad[...] += dz.T @ self._x
        self._lp["bias"].grad[...] += dz.sum(0)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", self._x.shape)
        dx[...] = dz @ W.value
        return dx


class FusedGLUEvalBug(FusedGLU):
    """Right in training; in evaluation mode (predict) it drops the gate."""
    def gate(self, z):
        return 1 / (1 + np.exp(-z)) if self.training else np.ones_like(z)


def glu_net(inputs: int = 6, hidden: int = 3, classes: int = 2):
    return [{"type": "Linear", "in_features": inputs, "out_features": 2 * hidden},
            {"type": "GLU24r"},
            {"type": "Linear", "in_features": hidden, "out_features": classes}]


@pytest.fixture
def glu_plugin():
    hooks = types.SimpleNamespace(
        nnumba_register_layers=hookimpl(lambda: {"GLU24r": GLU24r}),
        nnumba_register_models=hookimpl(lambda: {"glu-net-r24": NamedModel(
            glu_net, input_shape=lambda inputs=6, **o: (inputs,))}))
    nnumba.register_plugin(hooks, "review24")
    yield
    GLU24r.fused_class = None
    nnumba.unregister_plugin("review24")


def _torch_glu_net(model, x):
    P = {k: torch.tensor(np.array(p.value, np.float64)) for k, p in model.params()}
    h = torch.nn.functional.linear(torch.tensor(x), P["0.weight"], P["0.bias"])
    return torch.nn.functional.linear(torch.nn.functional.glu(h, -1), P["2.weight"],
                                      P["2.bias"]).numpy()


# ---------------------------------------------------------------- 1. MEDIUM
def test_check_model_compares_fused_steps_with_their_layers_in_evaluation_mode(glu_plugin):
    """check_fused runs the model's copy in training mode only (fused.py:18,
    `.train()`): a fused step that computes otherwise in evaluation mode passes
    check_model, and predict computes another function than the one trained."""
    GLU24r.fused_class = FusedGLUEvalBug
    model = nnumba.build("glu-net-r24", seed=0).astype("float64")
    x = np.random.default_rng(0).normal(size=(5, 6))
    ref = _torch_glu_net(model, x)                       # the layers' function
    assert np.allclose(model.train().forward(x), ref)   # right in training
    assert not np.allclose(model.predict(x), ref)       # wrong where predict runs
    with pytest.raises(testing.ConformanceError, match="fused step"):
        testing.check_model("glu-net-r24")


# ---------------------------------------------------------------- 2. LOW
class Chain(Layer):
    """A plugin's fused step that runs the layers it stands for one after another."""
    def __init__(self, parts=()):
        super().__init__()
        self.parts = list(parts)

    def output_shape(self, input_shape):
        for part in self.parts:
            input_shape = part.output_shape(input_shape)
        return input_shape

    def _forward(self, x):
        for part in self.parts:
            x = part.run_forward(x)
        return x

    def _backward(self, g):
        for part in reversed(self.parts):
            part.set_flags(needs_input_grad=True)
            g = part.run_backward(g)
        return g


class Scale24(Layer):
    """y = x * weight (per feature); fuses after anything into a Chain."""
    def __init__(self, n: int = 3):
        super().__init__()
        self.weight = self.add_param("weight", (n,))

    def reset_parameters(self, rng):
        self.weight.value[...] = rng.normal(size=self.weight.value.shape)

    def _forward(self, x):
        self._x = x
        y = self._buffer("y", x.shape)
        y[...] = x * self.weight.value
        return y

    def _backward(self, g):
        self.weight.grad[...] += (g * self._x).sum(0)
        dx = self._buffer("dx", g.shape)
        dx[...] = g * self.weight.value
        return dx

    def fuse_after(self, previous):
        return Chain([*(previous.parts if isinstance(previous, Chain) else [previous]), self])


def test_a_fused_step_standing_for_four_layers_holds_all_their_parameters():
    """hold_parameters (fusion.py:40) names a clash 'j.name' with j the side of the
    pair: in a chain the renamed '0.weight' of the second pair collides with the
    '0.weight' the first pair already made, and the dict keeps 2 of 4 parameters
    (and names layer 2's weight '0.weight'). Reference: the model's own parameter list."""
    model = nnumba.Sequential(*[Scale24(3) for _ in range(4)], seed=0)
    assert len(model.steps) == 1
    held = list(model.steps[0].params().values())
    assert len(held) == len(model.params()) == 4
    assert {id(p) for p in held} == {id(p) for _, p in model.params()}


# ---------------------------------------------------------------- 3. LOW
def test_a_model_pickled_before_fused_steps_held_parameters_trains_its_linear(glu_plugin):
    """A model (or estimator) pickled before b8d60dd kept its plugin fused step with
    no parameters; unpickling restores the steps as they were, so the Linear before
    the step still never trains (its gradient stays zero). __setstate__ could give such
    a step the pair's parameters again. Reference: torch autograd."""
    GLU24r.fused_class = FusedGLU
    model = nnumba.build("glu-net-r24", seed=0).astype("float64")
    model.steps[0]._params = {}            # the state an older nnumba pickled
    model = pickle.loads(pickle.dumps(model))
    rng = np.random.default_rng(0)
    x, dy = rng.normal(size=(5, 6)), rng.normal(size=(5, 2))
    model.train().forward(x)
    model.zero_grad()
    model.backward(dy)
    P = {k: torch.tensor(np.array(p.value), requires_grad=True) for k, p in model.params()}
    h = torch.nn.functional.linear(torch.tensor(x), P["0.weight"], P["0.bias"])
    out = torch.nn.functional.linear(torch.nn.functional.glu(h, -1), P["2.weight"], P["2.bias"])
    out.backward(torch.tensor(dy))
    np.testing.assert_allclose(model.layers[0].weight.grad, P["0.weight"].grad.numpy(),
                               rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- 4. LOW (message)
class LinScale(Layer):
    """Shares the Linear's _params dict, as the built-in LinearReLU does, but also
    computes with the Scale's parameter: refused, rightly, but the message says the
    fused layer's parameters 'are not those of' the pair and to 'make none'."""
    def __init__(self, lin=None):
        super().__init__()
        self._params = lin._params if lin is not None else {}


class Gain24(Layer):
    """y = x * gain, one learned scalar."""
    def __init__(self):
        super().__init__()
        self.gain = self.add_param("gain", (1,))


def test_refusing_a_fused_layer_holding_part_of_the_pair_names_what_it_misses():
    from nnumba.layers import Linear
    from nnumba.layers.fusion import hold_parameters
    lin, scale = Linear(3, 3), Gain24()
    missing = [name for name in scale.params()]   # the reference: what the pair adds
    with pytest.raises(nnumba.ContractError) as info:
        hold_parameters(LinScale(lin), [lin, scale])
    assert all(name in str(info.value) for name in missing), str(info.value)


# ---------------------------------------------------------------- 5. LOW (message)
class ShiftedCE(Loss):
    """Cross-entropy that shifts its predictions in place (plugins.md: '_compute leaves
    y_hat and y as they are')."""
    examples = [({}, (5, 3), "classes")]
    target_dtype = "int64"

    def _compute(self, y_hat, y, scale):
        y_hat -= y_hat.max(1, keepdims=True)
        p = np.exp(y_hat)
        p /= p.sum(1, keepdims=True)
        yi = np.asarray(y).astype(np.int64)
        losses = -np.log(p[np.arange(len(yi)), yi])
        g = p.copy()
        g[np.arange(len(yi)), yi] -= 1
        return losses.astype(y_hat.dtype), (scale * g).astype(y_hat.dtype)


def test_check_loss_says_a_loss_changes_its_predictions_in_place():
    """The kit fails it only by accident, as 'gradient ... disagrees with finite
    differences' (the numeric gradient's perturbed y_hat is shifted under it), which
    sends the author to the gradient formula, which is right."""
    z = np.random.default_rng(0).normal(size=(4, 3))
    before = z.copy()
    ShiftedCE().forward(z, np.array([0, 1, 2, 0]))
    assert not np.array_equal(z, before)             # the reference: it does change them
    with pytest.raises(testing.ConformanceError, match="(?i)in place|predictions .*chang"):
        testing.check_loss(ShiftedCE)


# ---------------------------------------------------------------- 6. LOW
def test_save_takes_any_mapping_of_class_names_by_index_not_its_keys(tmp_path):
    """io._info (io.py:350) turns only a dict into names by index; any other Mapping
    (types.MappingProxyType, a frozen/immutable dict from a config library) is iterated
    as a list, which yields its keys: the names stored are '0', '1', '2', the bug fixed
    for dict. Reference: the mapping's own values in key order."""
    import types as _types
    from nnumba.io import stored_info
    names = {0: "cat", 1: "dog", 2: "bird"}
    model = nnumba.build([{"type": "Linear", "in_features": 4, "out_features": 3}])
    path = tmp_path / "m.npz"
    try:
        nnumba.save(model, path, classes=_types.MappingProxyType(names))
    except nnumba.errors.SaveError:
        return  # refused: acceptable
    assert stored_info(path)["classes"] == [names[k] for k in sorted(names)]
