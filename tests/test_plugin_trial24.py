"""Candidate tests from plugin trial 24 (a plugin written from the docs only).

Each plugin class is defined inline, written against nnumba's kernel set as
docs/plugins.md's "one body" way describes; no installed plugin is needed.
(Plugin trial 24.)
"""
import copy
import tempfile
from pathlib import Path

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.layers.validation import integer, number


class CenteredPReLU(Layer):
    """z = x - mu (the batch mean in training, the running mean in evaluation);
    y = max(z, 0) + alpha * min(z, 0), alpha per feature. One body, kernels only."""

    examples = [({"features": 4}, (5, 4)), ({"features": 3, "momentum": 0.5}, (7, 3))]
    kept_for_backward = ("_z", "_pos", "_neg", "_g")

    def __init__(self, features: int, momentum: float = 0.1, init: float = 0.25):
        super().__init__()
        self.features = integer(type(self).__name__, "features", features)
        self.momentum = number(type(self).__name__, "momentum", momentum, 0, 1)
        self.init = number(type(self).__name__, "init", init)
        self.alpha = self.add_param("alpha", (self.features,))
        self.running_mean = self.add_param("running_mean", (self.features,), trainable=False)

    def reset_parameters(self, rng):
        self.alpha.value[...] = self.init
        self.running_mean.value[...] = 0

    def input_shape(self):
        return (self.features,)

    def output_shape(self, input_shape):
        return (self.features,)

    def _momentum(self):
        return self.momentum

    def _forward(self, x):
        k, (n, d), t = self.kernels, x.shape, x.dtype.type
        mean = self._buffer("mean", (d,))
        k.fill(mean, 0)
        if self.training:
            k.accumulate_bias_grad(x, mean)
            k.scale(mean, t(1.0 / n), mean)
            m = self._momentum()
            rm = self.running_mean.value
            k.scale(rm, t(1 - m), rm)
            upd = self._buffer("upd", (d,))
            k.scale(mean, t(m), upd)
            k.accumulate(rm, upd)
        else:
            k.accumulate(mean, self.running_mean.value)
        negmean = self._buffer("negmean", (d,))
        k.scale(mean, t(-1), negmean)
        s = x.size
        z = self._buffer("z", x.shape)
        k.fill(z, 0)
        k.accumulate(z.reshape(s), x.reshape(s))
        k.add_bias(z, negmean)
        pos = self._buffer("pos", x.shape)
        k.relu_forward(z.reshape(s), pos.reshape(s))
        neg = self._buffer("neg", x.shape)
        k.scale(pos.reshape(s), t(-1), neg.reshape(s))
        k.accumulate(neg.reshape(s), z.reshape(s))
        g = self._buffer("g", x.shape)
        k.fill(g, 0)
        k.add_bias(g, self.alpha.value)
        y = self._buffer("y", x.shape)
        k.multiply(neg.reshape(s), g.reshape(s), y.reshape(s))
        k.accumulate(y.reshape(s), pos.reshape(s))
        self._z, self._pos, self._neg, self._g = z, pos, neg, g
        return y

    def _backward(self, dl_dy):
        k, (n, d), s, t = self.kernels, dl_dy.shape, dl_dy.size, dl_dy.dtype.type
        terms = self._buffer("terms", dl_dy.shape)
        k.multiply(dl_dy.reshape(s), self._neg.reshape(s), terms.reshape(s))
        k.accumulate_bias_grad(terms, self.alpha.grad)
        if not self.needs_input_grad:
            return None
        dpos = self._buffer("dpos", dl_dy.shape)
        k.relu_backward(self._pos.reshape(s), dl_dy.reshape(s), dpos.reshape(s))
        ga = self._buffer("ga", dl_dy.shape)
        k.multiply(dl_dy.reshape(s), self._g.reshape(s), ga.reshape(s))
        gap = self._buffer("gap", dl_dy.shape)
        k.relu_backward(self._pos.reshape(s), ga.reshape(s), gap.reshape(s))
        dz = self._buffer("dz", dl_dy.shape)
        k.scale(gap.reshape(s), t(-1), dz.reshape(s))
        k.accumulate(dz.reshape(s), ga.reshape(s))
        k.accumulate(dz.reshape(s), dpos.reshape(s))
        if self.training:
            m = self._buffer("dmean", (d,))
            k.fill(m, 0)
            k.accumulate_bias_grad(dz, m)
            k.scale(m, t(-1.0 / n), m)
            k.add_bias(dz, m)
        return dz


def test_the_reference_layer_passes_check_all_and_matches_a_closed_form():
    testing.check_all(CenteredPReLU)
    rng = np.random.default_rng(0)
    layer = CenteredPReLU(5, momentum=0.2).astype("float64")
    layer.alpha.value[...] = rng.normal(size=5)
    x, g = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
    y, dx = layer.forward(x), layer.backward(g)
    z = x - x.mean(0)
    a = layer.alpha.value
    np.testing.assert_allclose(y, np.where(z > 0, z, a * z), atol=1e-12)
    dz = g * np.where(z > 0, 1, a)
    np.testing.assert_allclose(dx, dz - dz.mean(0), atol=1e-12)
    np.testing.assert_allclose(layer.alpha.grad, (g * np.minimum(z, 0)).sum(0), atol=1e-12)


# ---- Finding 1: the documented random layer can never pass check_all ----------

class NoisyScale(Layer):
    """y = x * (1 + sigma * e) in training, e ~ N(0, 1) drawn at every forward from
    the layer's own generator, which random_generator() returns (as plugins.md
    says); y = x in evaluation."""

    examples = [({"sigma": 0.1}, (3, 4))]
    kept_for_backward = ("_x", "_y", "_m")

    def __init__(self, sigma: float = 0.1):
        super().__init__()
        self.sigma = number("NoisyScale", "sigma", sigma, 0, None)
        self._rng = np.random.default_rng(0)

    def reset_parameters(self, rng):
        self._rng = np.random.default_rng(rng.integers(2**63))

    def random_generator(self):
        return self._rng

    def _forward(self, x):
        k, s = self.kernels, x.size
        m = self._buffer("m", x.shape)
        if self.training:
            e = self._rng.standard_normal(x.shape).astype(x.dtype)
            m[...] = 1 + x.dtype.type(self.sigma) * e   # numpy: CPU only, declared below
        else:
            k.fill(m, 1)
        y = self._buffer("y", x.shape)
        k.multiply(x.reshape(s), m.reshape(s), y.reshape(s))
        self._m = m
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        s = dl_dy.size
        dx = self._buffer("dx", dl_dy.shape)
        self.kernels.multiply(dl_dy.reshape(s), self._m.reshape(s), dx.reshape(s))
        return dx

    devices = ("cpu",)


def test_check_all_accepts_a_random_layer_that_returns_its_generator():
    # Independent reference first: with the generator's state put back before each
    # forward, the layer is a fixed function whose backward matches central differences.
    layer = NoisyScale(0.1).astype("float64")
    rng = np.random.default_rng(1)
    x, g = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    state = copy.deepcopy(layer.random_generator().bit_generator.state)

    def f(xx):
        layer.random_generator().bit_generator.state = copy.deepcopy(state)
        return float(np.sum(layer.forward(xx) * g))

    f(x)
    dx = layer.backward(g).copy()
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += 1e-6
        xm[i] -= 1e-6
        num[i] = (f(xp) - f(xm)) / 2e-6
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)
    # The kit says it skips what a random forward cannot give (float32 and batch
    # checks), yet its finite differences draw new noise at each forward.
    testing.check_all(NoisyScale)


# ---- Finding 2: state kept outside a parameter (a step count) is lost by save/load

class CumulativeCentered(CenteredPReLU):
    """The running mean is a cumulative average for the first 1/momentum steps, the
    step count in a plain int attribute (docs: a counter belongs in a
    trainable=False parameter, or a model does not save it)."""

    def __init__(self, features: int, momentum: float = 0.1, init: float = 0.25):
        super().__init__(features, momentum, init)
        self._count = 0

    def _momentum(self):
        self._count += 1
        return max(self.momentum, 1.0 / self._count)


def test_check_all_catches_a_step_count_that_save_load_loses():
    # The harm, against the closed form: a model trained one step, saved and loaded,
    # then trained one more step must hold the running mean the unsaved model holds.
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 1
    CumulativeCentered.type_name = "CumulativeCentered24"
    nnumba.register_plugin(type("P", (), {"nnumba_register_layers": nnumba.hookimpl(
        lambda: {"CumulativeCentered24": CumulativeCentered})}), "trial24cand")
    try:
        model = nnumba.Sequential(CumulativeCentered(3), seed=0).astype("float64")
        model.train()
        model.forward(x1)
        with tempfile.TemporaryDirectory() as tmp:
            twin = nnumba.load_model(nnumba.save(model, Path(tmp) / "m.npz"))
        twin.astype("float64")
        twin.train()
        twin.forward(x2)
        want = 0.5 * x1.mean(0) + 0.5 * x2.mean(0)       # the cumulative average of 2 steps
        got = dict(twin.params())["0.running_mean"].value
        lost = not np.allclose(got, want)
    finally:
        nnumba.unregister_plugin("trial24cand")
    assert lost  # the plugin is wrong: the second step restarted the average
    with pytest.raises(testing.ConformanceError):
        testing.check_all(CumulativeCentered)


# ---- Finding 3: a write into dl_dy with needs_input_grad False is named as something else

class WritesDyAsFirstLayer(CenteredPReLU):
    """Scales dl_dy in place, only when no input gradient is asked (a first layer)."""

    def _backward(self, dl_dy):
        out = super()._backward(dl_dy)
        if not self.needs_input_grad:
            dl_dy *= 0.5
        return out


def test_check_all_names_a_write_into_dl_dy_without_input_grad():
    with pytest.raises(testing.ConformanceError, match="dl_dy"):
        testing.check_all(WritesDyAsFirstLayer)
