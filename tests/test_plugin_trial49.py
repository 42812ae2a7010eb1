"""Plugin trial 49 (own @njit kernels, a fused layer after a built-in Linear, a view
layer, layers that follow and break the buffer and flag rules):

1. A fused step that keeps a parameter array from its constructor (the mistake
   docs/plugins.md warns against) made ``testing.check_fused`` raise a bare
   ``DTypeError`` from ``matmul`` (no step named), and ``check_model`` a
   ConformanceError naming neither the step nor the cause: both now name the step
   and say to read ``param.value`` at every call.
2. A layer that sets the container flag ``reuse_buffers`` itself was told by
   ``check_all`` that it returned a ``keep=True`` buffer, which it never used: the
   message now names the flag.
Plugins are registered with the documented ``nnumba.register_plugin`` API."""
import types

import numpy as np
import pytest

import nnumba
from nnumba import Layer, hookimpl, testing
from nnumba.layers import Linear


class Twice49(Layer):
    """y = 2 x, fused after a built-in Linear into a step that caches the weight."""

    examples = [({}, (3, 4))]

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        self.kernels.scale(x.reshape(x.size), 2.0, y.reshape(y.size))
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        self.kernels.scale(dl_dy.reshape(dl_dy.size), 2.0, dx.reshape(dx.size))
        return dx

    def fuse_after(self, previous):
        return CachedLinearTwice49(previous, self) if type(previous) is Linear else None


class CachedLinearTwice49(Layer):
    """Linear then 2x; keeps the weight array from __init__ (the bug under test)."""

    kept_for_backward = ("_x",)

    def __init__(self, linear, twice):
        super().__init__()
        self.linear, self.twice = linear, twice
        self._w = linear.params()["weight"].value          # stale once the model rebinds it

    def _forward(self, x):
        k = self.kernels
        s = self._buffer("s", (x.shape[0], self._w.shape[0]))
        k.matmul(x, self._w, s, trans_b=True)
        k.add_bias(s, self.linear.params()["bias"].value)
        y = self._buffer("y", s.shape)
        k.scale(s.reshape(s.size), 2.0, y.reshape(y.size))
        self._x = x
        return y

    def _backward(self, dl_dy):
        k = self.kernels
        w, b = self.linear.params()["weight"], self.linear.params()["bias"]
        ds = self._buffer("ds", dl_dy.shape)
        k.scale(dl_dy.reshape(dl_dy.size), 2.0, ds.reshape(ds.size))
        k.matmul(ds, self._x, w.grad, trans_a=True, accumulate=True)
        k.accumulate_bias_grad(ds, b.grad)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", self._x.shape)
        k.matmul(ds, self._w, dx)
        return dx


def test_check_fused_names_a_step_that_caches_a_parameter():
    model = nnumba.Sequential(Linear(4, 5), Twice49(), Linear(5, 3), seed=0)   # float32
    assert type(model.steps[0]) is CachedLinearTwice49
    with pytest.raises(testing.ConformanceError,
                       match=r"Linear #0 \+ Twice49 #1.*read param\.value at every call"):
        testing.check_fused("t49", model, np.random.default_rng(0).normal(size=(6, 4)))


def test_the_same_step_reading_its_parameters_at_every_call_passes(monkeypatch):
    """The control: the step reading linear.weight.value at every call passes the kit,
    and the model computes 2 (x W^T + b) then the last Linear (closed form)."""
    monkeypatch.setattr(CachedLinearTwice49, "_w", raising=False, value=property(
        lambda self: self.linear.params()["weight"].value, lambda self, v: None))
    model = nnumba.Sequential(Linear(4, 5), Twice49(), Linear(5, 3), seed=0)
    x = np.random.default_rng(0).normal(size=(6, 4))
    testing.check_fused("t49", model, x)
    (w1, b1), (w2, b2) = [(layer.weight.value, layer.bias.value)
                          for layer in (model.layers[0], model.layers[2])]
    np.testing.assert_allclose(model.predict(x.astype(np.float32)),
                               2 * (x @ w1.T + b1) @ w2.T + b2, rtol=1e-5, atol=1e-6)


@pytest.fixture
def cached_plugin():
    def net(inputs: int = 4, classes: int = 3):
        """Linear, Twice49, Linear."""
        return [{"type": "Linear", "in_features": inputs, "out_features": 5},
                {"type": "Twice49"},
                {"type": "Linear", "in_features": 5, "out_features": classes}]

    plug = types.SimpleNamespace(
        nnumba_register_layers=hookimpl(lambda: {"Twice49": Twice49}),
        nnumba_register_models=hookimpl(lambda: {"twice49-net": net}))
    nnumba.register_plugin(plug, "trial49_cached")
    try:
        yield
    finally:
        nnumba.unregister_plugin("trial49_cached")


def test_check_model_names_a_step_that_caches_a_parameter(cached_plugin):
    # The reference: the same layers unfused compute 2 (x W^T + b); the fused step,
    # built in float32, reads a stale float32 weight after the kit's astype("float64").
    with pytest.raises(testing.ConformanceError, match=r"Linear #0 \+ Twice49 #1"):
        testing.check_model("twice49-net")


class SetsReuseBuffers49(Twice49):
    """y = 2 x, but sets reuse_buffers itself (a flag a layer must never set)."""

    fuse_after = Layer.fuse_after  # (alone: no cached step)

    def _forward(self, x):
        self.reuse_buffers = True
        return super()._forward(x)


def test_check_all_names_the_container_flag_a_layer_sets():
    with pytest.raises(testing.ConformanceError,
                       match="_forward set reuse_buffers, a flag its model sets on it"):
        testing.check_all(SetsReuseBuffers49)
