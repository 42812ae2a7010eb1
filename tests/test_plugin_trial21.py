"""Plugin trial 21: a plugin written from docs/plugins.md alone.

- A fused step (fuse_after) that computes with the Linear's parameters read through
  previous.params() left that Linear untrained (the step had no parameters of its
  own, so the model skipped its backward); the model now gives a fused step the
  pair's parameters, and check_model compares each fused step with its layers.
- check_loss compares the two reductions, check_all warns where a layer without
  state or draws computes otherwise in evaluation mode, names an output that breaks
  output_shape(), and a bare build function's model passes check_model.

References: PyTorch autograd and the documented relation between the reductions.
"""
import types

import numpy as np
import pytest

import nnumba
from nnumba import Layer, LabelError, Loss, ShapeError, hookimpl, testing
from nnumba.device import to_host
from nnumba.layers.validation import number
from nnumba.models import NamedModel

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- the plugin pieces
class GLU21t(Layer):
    """Splits the last axis in two halves a, g and gives a * sigmoid(g)."""
    examples = [({}, (3, 4)), ({}, (2, 3, 6))]
    devices = ("cpu",)
    kept_for_backward = ("_a", "_s")
    fused_class = None           # set per test: what fuse_after offers after a Linear

    def output_shape(self, input_shape):
        if input_shape[-1] % 2:
            raise ShapeError(f"{self.label}: the last axis must have an even size")
        return (*input_shape[:-1], input_shape[-1] // 2)

    def _forward(self, x):
        h = x.shape[-1] // 2
        one = x.dtype.type(1)
        s = one / (one + np.exp(-x[..., h:]))
        y = self._buffer("y", x[..., :h].shape)
        np.multiply(x[..., :h], s, out=y)
        self._a, self._s = np.ascontiguousarray(x[..., :h]), s
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        h = dl_dy.shape[-1]
        dx = self._buffer("dx", (*dl_dy.shape[:-1], 2 * h))
        one = dl_dy.dtype.type(1)
        dx[..., :h] = dl_dy * self._s
        dx[..., h:] = dl_dy * self._a * self._s * (one - self._s)
        return dx

    def fuse_after(self, previous):
        if self.fused_class is not None and type(previous).__name__ == "Linear":
            return self.fused_class(previous)
        return None


class FusedByParams(Layer):
    """Linear(in, 2h) + GLU21t in one pass, reading the Linear's parameters through the
    public previous.params() at every call: what plugins.md allows (it says no more)."""
    kept_for_backward = ("_x", "_a", "_s")

    def __init__(self, linear=None):
        super().__init__()
        self._lp = linear.params() if linear is not None else {}

    def input_shape(self):
        return (self._lp["weight"].value.shape[1],)

    def output_shape(self, input_shape):
        return (self._lp["weight"].value.shape[0] // 2,)

    def _forward(self, x):
        W, b = self._lp["weight"].value, self._lp["bias"].value
        h = W.shape[0] // 2
        z = x @ W.T + b
        self._x, self._a, self._s = x, z[:, :h].copy(), 1 / (1 + np.exp(-z[:, h:]))
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


class FusedWrong(FusedByParams):
    """A fused step that drops the gate: another function than the layers it stands for."""
    def _forward(self, x):
        y = super()._forward(x)
        y[...] = self._a
        return y


def glu_net_t(inputs: int = 6, hidden: int = 3, classes: int = 2):
    """Linear + GLU21t, then one score per class."""
    return [{"type": "Linear", "in_features": inputs, "out_features": 2 * hidden},
            {"type": "GLU21t"},
            {"type": "Linear", "in_features": hidden, "out_features": classes}]


@pytest.fixture
def glu_plugin():
    hooks = types.SimpleNamespace(
        nnumba_register_layers=hookimpl(lambda: {"GLU21t": GLU21t}),
        nnumba_register_models=hookimpl(lambda: {"glu-net-t": NamedModel(
            glu_net_t, input_shape=lambda inputs=6, **o: (inputs,))}))
    nnumba.register_plugin(hooks, "trial21t")
    yield
    GLU21t.fused_class = None
    nnumba.unregister_plugin("trial21t")


def _torch_grads(model, x, dy):
    """The layers' function by torch autograd: Linear, GLU, Linear."""
    P = {k: torch.tensor(np.array(p.value), requires_grad=True) for k, p in model.params()}
    h = torch.nn.functional.linear(torch.tensor(x), P["0.weight"], P["0.bias"])
    out = torch.nn.functional.linear(torch.nn.functional.glu(h, -1), P["2.weight"], P["2.bias"])
    out.backward(torch.tensor(dy))
    return out.detach().numpy(), {k: t.grad.numpy() for k, t in P.items()}


# ---------------------------------------------------------------- fused steps
def _fused_model(fused):
    GLU21t.fused_class = fused
    model = nnumba.build("glu-net-t", seed=0).astype("float64")
    assert type(model.steps[0]) is fused
    rng = np.random.default_rng(0)
    x, dy = rng.normal(size=(5, 6)), rng.normal(size=(5, 2))
    out = model.train().forward(x)
    model.zero_grad()
    model.backward(dy)
    return model, x, dy, out


def test_a_fused_step_reading_the_pairs_parameters_trains_them(glu_plugin):
    """It computed the right output, but the first Linear's gradient was zero: the
    model skipped the step's backward, which had no parameters of its own."""
    model, x, dy, out = _fused_model(FusedByParams)
    ref_out, ref_grads = _torch_grads(model, x, dy)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12)
    for key, p in model.params():
        np.testing.assert_allclose(p.grad, ref_grads[key], rtol=1e-10, atol=1e-12)
    assert {id(p) for p in model.steps[0].params().values()} == \
        {id(p) for _, p in model.layers[0].params().items()}
    testing.check_model("glu-net-t")


def test_check_model_catches_a_fused_step_computing_otherwise(glu_plugin):
    model, x, dy, out = _fused_model(FusedWrong)
    ref_out, _ = _torch_grads(model, x, dy)
    assert not np.allclose(out, ref_out)  # the fused model is wrong...
    with pytest.raises(testing.ConformanceError, match="fused step .* another output"):
        testing.check_model("glu-net-t")  # ...and the kit says so


class FusedDoubleBiasGrad(FusedByParams):
    """Adds the bias gradient twice: the output is right, the training is not."""
    def _backward(self, dl_dy):
        dx = super()._backward(dl_dy)
        s = self._s
        self._lp["bias"].grad[:s.shape[1]] += (dl_dy * s).sum(0)
        return dx


def test_check_model_catches_a_fused_step_with_a_wrong_gradient(glu_plugin):
    model, x, dy, _ = _fused_model(FusedDoubleBiasGrad)
    _, ref_grads = _torch_grads(model, x, dy)
    assert not np.allclose(model.layers[0].bias.grad, ref_grads["0.bias"])
    with pytest.raises(testing.ConformanceError, match="another gradient for Linear #0 bias"):
        testing.check_model("glu-net-t")


class FusedOwnWeight(FusedByParams):
    """Makes a parameter of its own: the optimizer and the spec know the pair's alone."""
    def __init__(self, linear=None):
        super().__init__(linear)
        self.extra = self.add_param("extra", (1,))


def test_a_fused_step_with_parameters_of_its_own_is_refused(glu_plugin):
    GLU21t.fused_class = FusedOwnWeight
    with pytest.raises(nnumba.ContractError, match="holds parameters of its own \\(extra\\)"):
        nnumba.build("glu-net-t", seed=0)
    GLU21t.fused_class = staticmethod(lambda linear: "not a layer")
    with pytest.raises(nnumba.ContractError, match="returned str, not a Layer"):
        nnumba.build("glu-net-t", seed=0)


def test_fused_parameters_are_named_by_position_where_both_have_one():
    from nnumba.layers.fusion import hold_parameters
    a, b = nnumba.layers.Linear(2, 2), nnumba.layers.Linear(2, 2)
    fused = nnumba.layers.ReLU()
    hold_parameters(fused, [a, b])
    assert list(fused.params()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert fused.params()["1.bias"] is b.bias


# ---------------------------------------------------------------- check_loss

class BCEt(Loss):
    """BCE on logits with pos_weight (PyTorch's BCEWithLogitsLoss)."""
    examples = [({}, (5, 3), "values"), ({"pos_weight": 2.5, "reduction": "sum"}, (4, 2), "values")]
    bug = True  # "sum" drops pos_weight

    def __init__(self, pos_weight: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.pos_weight = number("BCEt", "pos_weight", pos_weight, 0, None, above=0)

    def config(self):
        return {"pos_weight": self.pos_weight, **super().config()}

    def _compute(self, y_hat, y, scale):
        z, t = to_host(y_hat).astype(np.float64), np.asarray(to_host(y))
        if t.shape != z.shape:
            raise ShapeError(f"{type(self).__name__} loss: expected targets of shape {z.shape}, got {t.shape}")
        if t.dtype.kind not in "fiub":
            raise LabelError(f"{type(self).__name__} loss: expected numeric targets, got {t.dtype}")
        pw = 1.0 if self.reduction == "sum" and self.bug else self.pos_weight
        n = z.shape[0]
        zz, tt = z.reshape(n, -1), t.reshape(n, -1).astype(np.float64)
        k = zz.shape[1]
        per = pw * tt * np.logaddexp(0, -zz) + (1 - tt) * np.logaddexp(0, zz)
        sig = 1 / (1 + np.exp(-zz))
        grad = -pw * tt * (1 - sig) + (1 - tt) * sig
        losses, sc = per.sum(1), scale
        if self.reduction == "mean":
            losses, sc = losses / k, scale / k
        return losses, self.device.to_device((sc * grad).reshape(z.shape).astype(y_hat.dtype))


def test_check_loss_compares_the_two_reductions():
    """The kit ran finite differences for both reductions, each alone: a loss whose
    'sum' computes another function than N K times its 'mean' (here pos_weight is
    dropped under 'sum') passed. Reference: torch's sum."""
    rng = np.random.default_rng(0)
    z, t = rng.normal(size=(4, 2)), rng.uniform(size=(4, 2))
    ref = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(2.5), reduction="sum")(
        torch.tensor(z), torch.tensor(t)).item()
    assert BCEt(2.5, "sum").forward(z, t) != pytest.approx(ref)   # the loss is wrong
    assert BCEt(2.5, "mean").forward(z, t) * 8 == pytest.approx(ref)
    with pytest.raises(testing.ConformanceError, match="reduction='sum' are not those"):
        testing.check_loss(BCEt)


class BCEtRight(BCEt):
    """The same loss with pos_weight under both reductions (a mean over K outputs)."""
    bug = False


def test_check_loss_passes_a_loss_averaging_over_its_outputs():
    z, t = np.random.default_rng(1).normal(size=(4, 2)), np.full((4, 2), 0.3)
    ref = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(2.5), reduction="sum")(
        torch.tensor(z), torch.tensor(t)).item()
    assert BCEtRight(2.5, "sum").forward(z, t) == pytest.approx(ref, rel=1e-12)
    assert BCEtRight(2.5, "mean").forward(z, t) * 8 == pytest.approx(ref, rel=1e-12)
    testing.check_loss(BCEtRight)


# ---------------------------------------------------------------- evaluation mode
class EvalDropsBias(Layer):
    """y = x + b, but the bias is left out in evaluation mode (an `if self.training:`
    around a line that belongs to both modes). No state, no random generator."""
    examples = [({"features": 3}, (4, 3))]

    def __init__(self, features: int):
        super().__init__()
        self.bias = self.add_param("bias", (features,))

    def reset_parameters(self, rng):
        self.bias.value[...] = rng.normal(size=self.bias.value.shape)

    def input_shape(self):  # (else the kit's size-1 pass refuses it first: trial 34)
        return (self.bias.value.size,)

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        y[...] = x
        if self.training:
            y += self.bias.value
        return y

    def _backward(self, dl_dy):
        self.bias.grad[...] += dl_dy.sum(0)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy
        return dx


def test_check_all_flags_a_stateless_deterministic_layer_whose_eval_differs():
    """A layer with no state (no trainable=False parameter) and no random_generator()
    that gives one output in training and another in evaluation mode passed check_all
    silently; predict then computes a function the training never fitted.
    Reference: the layer's own training output. Now a warning."""
    layer = EvalDropsBias(3).astype("float64")
    x = np.random.default_rng(0).normal(size=(4, 3))
    layer.train()
    t = layer.forward(x).copy()
    layer.eval()
    assert not np.allclose(layer.forward(x), t)
    import warnings
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        testing.check_all(EvalDropsBias)  # a warning, not a failure
    assert any("in evaluation mode its output differs from training's" in str(m.message)
               for m in w)


# ---------------------------------------------------------------- a bare build function
def test_a_bare_build_function_model_can_pass_check_model(glu_plugin):
    """plugins.md's hook table allows 'a bare build function' as a model, and nnumba's
    suite runs check_model over every installed model; check_model refused every bare
    function ('it gives no input_shape; give one'). It now takes the input shape the
    first layer fixes (a Linear's), and says how to give one where that is not fixed."""
    hooks = types.SimpleNamespace(
        nnumba_register_models=hookimpl(lambda: {"glu-net-bare": glu_net_t}))
    nnumba.register_plugin(hooks, "trial21bare")
    try:
        assert nnumba.get_model("glu-net-bare").input_shape_for() is None
        testing.check_model("glu-net-bare", inputs=6)
    finally:
        nnumba.unregister_plugin("trial21bare")


def test_a_bare_build_function_starting_with_a_free_shape_is_told_how_to_give_one():
    def flat_net():
        return [{"type": "Flatten"}, {"type": "Linear", "in_features": 4, "out_features": 2}]
    hooks = types.SimpleNamespace(nnumba_register_models=hookimpl(lambda: {"flat-bare": flat_net}))
    nnumba.register_plugin(hooks, "trial21flat")
    try:
        with pytest.raises(testing.ConformanceError,
                           match="first layer \\(Flatten\\) does not fix one; register "
                                 "NamedModel\\(build, input_shape=...\\)"):
            testing.check_model("flat-bare")
    finally:
        nnumba.unregister_plugin("trial21flat")


# ---------------------------------------------------------------- output_shape
class FlatForOne(Layer):
    """x W^T as Linear, but a batch of one comes back flat, (out,), not (1, out)."""
    examples = [({}, (5, 4))]

    def __init__(self):
        super().__init__()
        self.weight = self.add_param("weight", (3, 4))

    def reset_parameters(self, rng):
        self.weight.value[...] = rng.normal(size=(3, 4))

    def input_shape(self):
        return (4,)

    def output_shape(self, input_shape):
        return (3,)

    def _forward(self, x):
        y = self._buffer("y", (x.shape[0], 3))
        self.kernels.matmul(x, self.weight.value, y, trans_b=True)
        self._x = x
        return y.reshape(y.size) if x.shape[0] == 1 else y

    def _backward(self, dl_dy):
        self.kernels.matmul(dl_dy, self._x, self.weight.grad, trans_a=True, accumulate=True)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", (dl_dy.shape[0], 4))
        self.kernels.matmul(dl_dy, self.weight.value, dx)
        return dx


def test_check_all_names_an_output_shape_that_breaks_output_shape():
    """The kit's own comparison in check_state raised a numpy broadcast ValueError,
    reported as 'raised by its code in check_state on the example of shape (5, 4)':
    neither the batch of one nor the shape promise was named. Sequential's check says it plainly ('returned
    float32 (3,), but its output_shape promised float32 (1, 3)'); the kit should too."""
    model = nnumba.Sequential(FlatForOne(), seed=0)
    with pytest.raises(ShapeError, match="output_shape promised"):
        model.predict(np.ones((1, 4), np.float32))          # the reference message
    with pytest.raises(testing.ConformanceError, match="output_shape"):
        testing.check_all(FlatForOne)
