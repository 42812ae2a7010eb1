"""Plugin trial 25 (a plugin with its own kernels and a fused layer, from the docs):
each test failed at da08bfd for the reason in its docstring.  No installed plugin is
needed: the layers are defined here and registered in-process, as docs/plugins.md says.
"""
import importlib
import sys
import textwrap
import types
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import Layer, hookimpl, testing
from nnumba.errors import ContractError
from nnumba.layers import Linear
from nnumba.layers.validation import integer


# --------------------------------------------------------------------------- helpers
def _scale_layer(name, fused_cls):
    """y = x * gamma per feature (kernel set only), fusing with a Linear before it."""

    class Scale(Layer):
        examples = [({"features": 3}, (4, 3))]
        kept_for_backward = ("_x",)

        def __init__(self, features: int):
            super().__init__()
            self.features = integer(name, "features", features)
            self.gamma = self.add_param("gamma", (self.features,))

        def reset_parameters(self, rng):
            self.gamma.value[...] = rng.uniform(0.5, 1.5, self.gamma.value.shape)

        def input_shape(self):
            return (self.features,)

        def output_shape(self, input_shape):
            return (self.features,)

        def _forward(self, x):
            k = self.kernels
            g = self._buffer("g", x.shape)
            k.fill(g, 0)
            k.add_bias(g, self.gamma.value)
            y = self._buffer("y", x.shape)
            k.multiply(x.reshape(x.size), g.reshape(g.size), y.reshape(y.size))
            self._x = x
            return y

        def _backward(self, dl_dy):
            k, x, n = self.kernels, self._x, dl_dy.size
            terms = self._buffer("terms", x.shape)
            k.multiply(dl_dy.reshape(n), x.reshape(n), terms.reshape(n))
            k.accumulate_bias_grad(terms, self.gamma.grad)
            if not self.needs_input_grad:
                return None
            g = self._buffer("g", x.shape)
            k.fill(g, 0)
            k.add_bias(g, self.gamma.value)
            dx = self._buffer("dx", x.shape)
            k.multiply(dl_dy.reshape(n), g.reshape(n), dx.reshape(n))
            return dx

        def fuse_after(self, previous):
            if type(previous) is Linear and previous.out_features == self.features:
                return fused_cls(previous, self)
            return None

    Scale.__name__ = Scale.__qualname__ = name
    return Scale


class _LinearScaleBase(Layer):
    """Linear then Scale in one step: h = x W^T + b, y = h * gamma."""
    kept_for_backward = ("_x", "_h")
    gamma_rows = None   # a subclass's bug: sum gamma's gradient over the first rows only
    round_float32 = False  # a subclass's bug: a float32-only fast path

    def __init__(self, linear, scale):
        super().__init__()
        self.linear, self.scale = linear, scale

    def input_shape(self):
        return (self.linear.in_features,)

    def output_shape(self, input_shape):
        return (self.scale.features,)

    def _forward(self, x):
        k, lin, sc = self.kernels, self.linear, self.scale
        n = x.shape[0]
        h = self._buffer("h", (n, sc.features))
        k.matmul(x, lin.weight.value, h, trans_b=True)
        if lin.bias is not None:
            k.add_bias(h, lin.bias.value)
        g = self._buffer("g", h.shape)
        k.fill(g, 0)
        k.add_bias(g, sc.gamma.value)
        y = self._buffer("y", h.shape)
        k.multiply(h.reshape(h.size), g.reshape(g.size), y.reshape(y.size))
        if self.round_float32 and y.dtype == np.float32:
            y[...] = y.astype(np.float16)   # "fast path" that loses precision
        self._x, self._h = x, h
        return y

    def _backward(self, dl_dy):
        k, lin, sc = self.kernels, self.linear, self.scale
        x, h, m = self._x, self._h, dl_dy.size
        terms = self._buffer("terms", h.shape)
        k.multiply(dl_dy.reshape(m), h.reshape(m), terms.reshape(m))
        rows = terms if self.gamma_rows is None else terms[:self.gamma_rows]
        k.accumulate_bias_grad(rows, sc.gamma.grad)
        g = self._buffer("g", h.shape)
        k.fill(g, 0)
        k.add_bias(g, sc.gamma.value)
        dh = self._buffer("dh", h.shape)
        k.multiply(dl_dy.reshape(m), g.reshape(m), dh.reshape(m))
        k.matmul(dh, x, lin.weight.grad, trans_a=True, accumulate=True)
        if lin.bias is not None:
            k.accumulate_bias_grad(dh, lin.bias.grad)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", x.shape)
        k.matmul(dh, lin.weight.value, dx)
        return dx


def _register(plugin_name, layer_cls, model_name, inputs=6, hidden=5, classes=3):
    from nnumba.models import NamedModel

    def build(inputs: int = inputs, hidden: int = hidden, classes: int = classes):
        """Linear, Scale (fused with it), ReLU, Linear."""
        return [{"type": "Linear", "in_features": inputs, "out_features": hidden},
                {"type": layer_cls.__name__, "features": hidden},
                {"type": "ReLU"},
                {"type": "Linear", "in_features": hidden, "out_features": classes}]

    plugin = types.SimpleNamespace()

    @hookimpl
    def nnumba_register_layers():
        return {layer_cls.__name__: layer_cls}

    @hookimpl
    def nnumba_register_models():
        return {model_name: NamedModel(build, input_shape=lambda inputs=inputs, **o: (inputs,),
                                       train_defaults={"epochs": 1})}

    plugin.nnumba_register_layers = nnumba_register_layers
    plugin.nnumba_register_models = nnumba_register_models
    nnumba.register_plugin(plugin, plugin_name)


@pytest.fixture
def registered():
    names = []

    def reg(*args, **kw):
        _register(*args, **kw)
        names.append(args[0])
    yield reg
    for name in names:
        nnumba.unregister_plugin(name)


def _reference(model, x):
    """The model's layers in float64 numpy: Linear, Scale, ReLU, Linear (closed form)."""
    lin0, sc, _, lin1 = model.layers
    f = lambda a: np.asarray(a, dtype=np.float64)
    h = f(x) @ f(lin0.weight.value).T + f(lin0.bias.value)
    y = np.maximum(h * f(sc.gamma.value), 0)
    return y @ f(lin1.weight.value).T + f(lin1.bias.value), h


# --------------------------------------------------------------------------- finding 1
def test_check_model_checks_a_fused_steps_parameter_sums_at_a_large_batch(registered):
    """Finding 1.  A fused step whose parameter gradient is a wrong sum over the batch
    (here: only the first 64 rows, as a chunked or racing parallel reduction gives)
    passes check_model and check_fused at HEAD: they run a batch of 2
    (nnumba/testing/models.py:52, fused.py has no batch-of-copies check), while
    check_all's batch check (the one the guide says "catches the race") sees the
    unfused layer only."""
    class LinearScaleRows(_LinearScaleBase):
        gamma_rows = 64
    Scale = _scale_layer("Scale25Rows", LinearScaleRows)
    registered("trial25rows", Scale, "scale-net25-rows")
    testing.check_all(Scale)   # the layer alone is right

    # the bug is real: at 200 samples gamma's gradient differs from the closed form
    model = nnumba.build("scale-net25-rows", seed=0).astype("float64")
    assert type(model.steps[0]) is LinearScaleRows
    x = np.random.default_rng(0).standard_normal((200, 6))
    model.zero_grad()
    out = model.forward(x)
    g = np.random.default_rng(1).standard_normal(out.shape)
    model.backward(g)
    _, h = _reference(model, x)
    lin1, sc = model.layers[3], model.layers[1]
    dy1 = g @ np.asarray(lin1.weight.value)                  # into the ReLU's output
    dy = dy1 * ((h * np.asarray(sc.gamma.value)) > 0)        # into the Scale's output
    want = (dy * h).sum(axis=0)                              # d gamma, closed form
    assert not np.allclose(np.asarray(sc.gamma.grad), want)

    with pytest.raises(testing.ConformanceError, match="gamma"):
        testing.check_model("scale-net25-rows")


# --------------------------------------------------------------------------- finding 2
def test_check_model_compares_a_fused_step_in_float32_too(registered):
    """Finding 2.  check_fused converts the model to float64 before comparing
    (nnumba/testing/fused.py:24), so a fused step that is wrong only in float32 - the
    dtype every model is built and trained in - passes check_model; check_all's
    check_float32 holds a single layer to float32 accuracy, nothing does for a step."""
    class LinearScaleF16(_LinearScaleBase):
        round_float32 = True
    LinearScaleF16.devices = ("cpu",)   # numpy in the body
    Scale = _scale_layer("Scale25F16", LinearScaleF16)
    registered("trial25f16", Scale, "scale-net25-f16")

    model = nnumba.build("scale-net25-f16", seed=0)            # float32, as trained
    x = np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32)
    want, _ = _reference(model, x)
    got = np.asarray(model.forward(x), dtype=np.float64)
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err > 100 * np.finfo(np.float32).eps               # the bug is real

    with pytest.raises(testing.ConformanceError, match="float32"):
        testing.check_model("scale-net25-f16")


# --------------------------------------------------------------------------- finding 3
def test_a_fused_step_without_shape_methods_takes_its_layers_shapes(registered):
    """Finding 3.  The guide's "Fused layers" never asks a fused layer for
    input_shape()/output_shape(), but Sequential infers every step's shape from them
    (nnumba/model.py:229-238): the base class's identity output shape makes the model
    fail at every forward with a ShapeError blaming the *next* Linear (check_model:
    "Linear #3: expected input of shape (N, 5), got (2, 6)"), and a missing
    input_shape lets a wrong width reach the fused step's kernels unchecked.  Either
    the model takes a fused step's shapes from the layers it stands for, or it refuses
    the fused layer at build time naming it (ContractError)."""
    class LinearScaleNoShapes(_LinearScaleBase):
        pass
    del_attrs = ("input_shape", "output_shape")
    for a in del_attrs:   # inherit Layer's defaults instead of the base helper's
        setattr(LinearScaleNoShapes, a, getattr(Layer, a))
    Scale = _scale_layer("Scale25NoShapes", LinearScaleNoShapes)
    registered("trial25shapes", Scale, "scale-net25-shapes")

    try:
        model = nnumba.build("scale-net25-shapes", seed=0)
    except ContractError as exc:   # acceptable: refused, naming the fused layer
        assert "LinearScaleNoShapes" in str(exc) or "Scale25NoShapes" in str(exc)
        return
    assert type(model.steps[0]) is LinearScaleNoShapes
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    want, _ = _reference(model, x)
    np.testing.assert_allclose(model.forward(x), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(nnumba.ShapeError):
        model.forward(np.ones((4, 7), np.float32))
    testing.check_model("scale-net25-shapes")


# --------------------------------------------------------------------------- finding 4
FORMULA = '''
def twice(x, y, i):
    y[i] = x[i] * y.dtype.type(2)


def twice_grad(g, dx, i):
    dx[i] = g[i] * dx.dtype.type(2)
'''
KERNELS = '''
from numba import njit, prange
from . import formula as f

_twice, _grad = njit(inline="always")(f.twice), njit(inline="always")(f.twice_grad)


@njit(parallel=True, cache=True)
def forward(x, y):
    for i in prange(x.size):
        _twice(x, y, i)


@njit(parallel=True, cache=True)
def backward(g, dx):
    for i in prange(g.size):
        _grad(g, dx, i)
# no stamp(globals(), Path(__file__).parent): an edit of formula.py is ignored
'''


def test_check_all_warns_of_cached_own_kernels_without_a_stamp(tmp_path, monkeypatch):
    """Finding 4.  plugins.md: kernels with cache=True that inline a formula from another
    file must end with stamp(...), else a formula edit leaves numba loading the old
    machine code, "wrong results, silently".  Forgetting it is found by nothing: here
    the float64 kernels came from the stale cache and the fresh float32 ones from the
    edited formula, and check_all reported a float32 *precision* failure; with both
    dtypes cached it passes.  The kit can see an unstamped cached dispatcher of a
    ``devices`` module (its _cache._cache_file._source_stamp holds no sources hash)
    and should warn, naming stamp."""
    pkg = tmp_path / "stamp25pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "formula.py").write_text(textwrap.dedent(FORMULA))
    (pkg / "kernels.py").write_text(textwrap.dedent(KERNELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    kernels = importlib.import_module("stamp25pkg.kernels")
    stamp_of = kernels.forward._cache._cache_file._source_stamp
    assert not (isinstance(stamp_of, tuple) and len(stamp_of) == 2
                and isinstance(stamp_of[-1], str))        # really unstamped

    class Twice25(Layer):
        """y = 2 x with its own cached kernels."""
        examples = [({}, (3, 4))]
        devices = {"cpu": "stamp25pkg.kernels"}
        kept_for_backward = ()

        def _forward(self, x):
            y = self._buffer("y", x.shape)
            self.own.forward(x.reshape(x.size), y.reshape(y.size))
            return y

        def _backward(self, dl_dy):
            if not self.needs_input_grad:
                return None
            dx = self._buffer("dx", dl_dy.shape)
            self.own.backward(dl_dy.reshape(dl_dy.size), dx.reshape(dx.size))
            return dx

    x = np.arange(4.0)
    y = np.empty_like(x)
    kernels.forward(x, y)
    np.testing.assert_array_equal(y, 2 * x)                  # the layer itself is right
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        testing.check_all(Twice25)
    sys.modules.pop("stamp25pkg.kernels", None)
    sys.modules.pop("stamp25pkg.formula", None)
    sys.modules.pop("stamp25pkg", None)
    assert any("stamp" in str(w.message) for w in caught), [str(w.message) for w in caught]
