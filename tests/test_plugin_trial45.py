"""Plugin trial 45: built-in fusions fuse only the built-ins themselves (a ReLU
subclass after a Linear ran the built-in LinearReLU, a MaxPool2d subclass with one
more option could not follow a ReLU), and `nnumba summary` takes the input shape a
plugin first layer fixes.  Layers registered with the documented
``nnumba.register_plugin`` / ``nnumba.unregister_plugin``."""
import json

import numpy as np
import pytest

import nnumba
from nnumba import hookimpl
from nnumba.layers import MaxPool2d, ReLU


def _register(name, layers):
    class _Plugin:
        pass

    _Plugin.nnumba_register_layers = staticmethod(hookimpl(lambda: dict(layers)))
    nnumba.register_plugin(_Plugin, name)


@pytest.fixture
def plugin():
    names = []

    def add(name, layers):
        _register(name, layers)
        names.append(name)

    yield add
    for name in names:
        nnumba.unregister_plugin(name)


class HalfReLU(ReLU):
    """x / 2: a ReLU subclass whose forward computes another function."""

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        self.kernels.scale(x.reshape(x.size), 0.5, y.reshape(y.size))
        self._y = y
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        self.kernels.scale(dl_dy.reshape(dl_dy.size), 0.5, dx.reshape(dx.size))
        return dx


class TaggedPool(MaxPool2d):
    """MaxPool2d with one more (unused) option."""

    def __init__(self, kernel_size, stride=None, tag: str = "a"):
        super().__init__(kernel_size, stride)
        self.tag = tag


def test_builtin_fusion_does_not_replace_a_subclass_that_overrides_forward(plugin):
    plugin("t45half", {"T45HalfReLU": HalfReLU})
    model = nnumba.Sequential.from_spec(
        [{"type": "Linear", "in_features": 4, "out_features": 3},
         {"type": "T45HalfReLU"}], seed=0)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    lin = model.layers[0]
    reference = 0.5 * (x.astype(np.float64) @ lin.weight.value.T + lin.bias.value)
    np.testing.assert_allclose(model.predict(x), reference, rtol=1e-5, atol=1e-6)


def test_builtin_pool_fusion_builds_a_subclass_with_an_extra_option(plugin):
    plugin("t45tag", {"T45TaggedPool": TaggedPool})
    head = [{"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3},
            {"type": "ReLU"}]
    model = nnumba.Sequential.from_spec(head + [{"type": "T45TaggedPool", "kernel_size": 2}],
                                        seed=0)
    # reference: numpy max-pool 2x2 of relu(conv) computed from the model's own weights
    x = np.random.default_rng(0).random((3, 1, 8, 8)).astype(np.float32)
    conv = model.layers[0]
    w, b = conv.weight.value.astype(np.float64), conv.bias.value.astype(np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), (3, 3), axis=(2, 3))
    z = np.einsum("nchwij,dcij->ndhw", windows, w) + b[None, :, None, None]
    r = np.maximum(z, 0)
    pooled = r.reshape(3, 2, 3, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_allclose(model.predict(x), pooled, rtol=1e-5, atol=1e-6)


def test_summary_takes_the_input_shape_a_plugin_first_layer_fixes(plugin, tmp_path, capsys):
    from nnumba import Layer
    from nnumba.cli import main
    from nnumba.layers.validation import integer

    class Scale(Layer):
        """y = x * w, one weight per feature."""

        def __init__(self, features: int):
            super().__init__()
            self.features = integer("Scale", "features", features)
            self.w = self.add_param("w", (self.features,))

        def input_shape(self):
            return (self.features,)

        def _forward(self, x):
            y = self._buffer("y", x.shape)
            self.kernels.fill(y, 0)
            self.kernels.add_bias(y, self.w.value)
            self.kernels.multiply(y.reshape(y.size), x.reshape(x.size), y.reshape(y.size))
            self._x = x
            return y

    plugin("t45scale", {"T45Scale": Scale})
    spec = tmp_path / "scale.json"
    spec.write_text(json.dumps([{"type": "T45Scale", "features": 5},
                                {"type": "Linear", "in_features": 5, "out_features": 2}]))
    assert main(["summary", str(spec)]) == 0
    assert "total: 17 parameters" in capsys.readouterr().out   # 5 + (5*2 + 2)


@pytest.mark.parametrize("args, bounds, said", [
    ((-1.0, 0), dict(above=0), "> 0"),                   # was "> 0 and >= 0"
    ((2.0, 0, 1), dict(below=1), "< 1 and >= 0"),
    ((2.0, -3, 1.5), dict(above=0), "> 0 and <= 1.5"),
    ((5.0, 0, 1), {}, "in [0, 1]"),
])
def test_number_says_each_bound_once(args, bounds, said):
    from nnumba.errors import SpecError
    from nnumba.layers.validation import number
    with pytest.raises(SpecError) as caught:
        number("Scale", "eps", *args, **bounds)
    assert str(caught.value) == f"Scale: eps must be a finite number {said}, got {args[0]}"
