"""Plugin trial 47 (a random layer, a batch-statistics layer with running state, a
4-D layer with its own kernels and compile_unit): a compile_unit() of the wrong form
is a ContractError naming the layer, in fit and in the kit (fit unpacked it with a
bare TypeError); the estimators take drop_last, for a layer that refuses a batch of
one sample.  Plugins registered with the documented ``nnumba.register_plugin``."""
import math
import types

import numpy as np
import pytest

import nnumba
from nnumba import Layer, ShapeError, hookimpl, testing
from nnumba.errors import NnumbaError
from nnumba.layers.validation import integer
from nnumba.losses import CrossEntropy


class Scale47(Layer):
    """y = s[c] * x[n, c] on (N, C, H, W); compile_unit written as docs/plugins.md
    reads ("how long the layer's own kernels take to compile cold"): a number."""

    examples = [({"channels": 2}, (2, 2, 3, 3))]

    def __init__(self, channels: int):
        super().__init__()
        self.channels = integer("Scale47", "channels", channels)
        self.s = self.add_param("s", (self.channels,))

    def reset_parameters(self, rng):
        self.s.value[...] = 1 + 0.1 * rng.standard_normal(self.channels)

    def input_shape(self):
        return (self.channels, None, None)

    def flops(self, input_shape):
        n = math.prod(input_shape)
        return n, 2 * n, n

    def compile_unit(self, input_shape):
        return 1.0                       # seconds only, no key

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        y[...] = x * self.s.value[None, :, None, None]
        self._x = x
        return y

    def _backward(self, dl_dy):
        self.s.grad[...] += (dl_dy * self._x).sum(axis=(0, 2, 3))
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy * self.s.value[None, :, None, None]
        return dx


class BatchCenter47(Layer):
    """y = x - mean over the batch in training (a running mean as state), as a batch
    norm: refuses a training batch of 1 sample as docs/plugins.md asks."""

    examples = [({"features": 3}, (4, 3))]
    devices = ("cpu",)

    def __init__(self, features: int):
        super().__init__()
        self.features = integer("BatchCenter47", "features", features)
        self.running_mean = self.add_param("running_mean", (self.features,), trainable=False)

    def input_shape(self):
        return (self.features,)

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        if self.training:
            if x.shape[0] < 2:
                raise ShapeError(f"{self.label}: a training batch needs 2 samples, got 1 sample")
            m = x.mean(axis=0)
            self.running_mean.value[...] = 0.9 * self.running_mean.value + 0.1 * m
        else:
            m = self.running_mean.value
        y[...] = x - m
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy - dl_dy.mean(axis=0) if self.training else dl_dy
        return dx


@pytest.fixture
def registered():
    plugin = types.SimpleNamespace(nnumba_register_layers=hookimpl(
        lambda: {"Scale47": Scale47, "BatchCenter47": BatchCenter47}))
    nnumba.register_plugin(plugin, "trial47")
    try:
        yield
    finally:
        nnumba.unregister_plugin("trial47")


def _cnn():
    return nnumba.Sequential.from_spec(
        [{"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3},
         {"type": "Scale47", "channels": 2}, {"type": "Flatten"},
         {"type": "Linear", "in_features": 72, "out_features": 3}], seed=0)


def test_a_malformed_compile_unit_is_a_clear_error_in_fit_not_a_type_error(registered, monkeypatch):
    monkeypatch.delenv("NNUMBA_PRECOMPILE", raising=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    trainer = nnumba.SGDTrainer(_cnn(), CrossEntropy(), lr=0.1, batch_size=10, seed=0)
    with pytest.raises(NnumbaError, match="compile_unit"):
        trainer.fit(x, y, epochs=1)


def test_check_all_refuses_a_malformed_compile_unit():
    # check_all passed Scale47, whose compile_unit then broke
    # every fit; the kit checked flops()'s form, not compile_unit()'s.
    with pytest.raises(testing.ConformanceError, match="compile_unit"):
        testing.check_all(Scale47)


def test_nnclassifier_can_drop_a_short_last_batch_for_a_batch_statistics_layer(registered):
    # docs/plugins.md tells a batch-norm's author to refuse a 1-sample batch
    # and "tell your users to train with drop_last=True"; NNClassifier had no drop_last,
    # so 101 samples at batch 50 (a cross-validation fold can be any size) cannot fit.
    pytest.importorskip("sklearn")
    from nnumba.sklearn import NNClassifier
    rng = np.random.default_rng(0)
    x = rng.normal(size=(101, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    spec = [{"type": "BatchCenter47", "features": 3},
            {"type": "Linear", "in_features": 3, "out_features": 2}]
    est = NNClassifier(spec, epochs=2, batch_size=50, drop_last=True, random_state=0).fit(x, y)
    centred = est.model_.layers[0].running_mean.value
    assert np.all(np.isfinite(centred)) and np.any(centred != 0)
