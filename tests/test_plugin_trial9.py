"""What a ninth plugin author, writing from the docs alone, ran into: a parameter
name declared twice, spec() losing a plugin layer's qualified name, saved files and
a plugin's own models broken by a plugin installed later, and kit checks that let
through what nnumba summary, load_dataset or a broadcasting loss then trip over."""
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import ContractError, io, testing
from nnumba.data import Dataset
from nnumba.layers import ReLU
from nnumba.losses import MSE
from nnumba.registry import get_registry


class TwoBiases(nnumba.Layer):
    def __init__(self, n: int):
        super().__init__()
        self.a = self.add_param("b", (n,))
        self.c = self.add_param("b", (n,))


@pytest.mark.parametrize("name", ["", "my.w", 3, None])
def test_a_parameter_name_is_new_and_without_a_dot(name):
    class Named(nnumba.Layer):
        def __init__(self):
            super().__init__()
            self.add_param(name, (2,))
    with pytest.raises(ContractError, match=r"Named: add_param\(.*\): a parameter name is"):
        Named()


def test_a_second_parameter_of_one_name_is_refused():
    # it replaced the first, which then never trained nor was saved; the kit passed
    with pytest.raises(ContractError, match=r"TwoBiases: add_param\('b'\) twice"):
        TwoBiases(3)


class Negate(nnumba.Layer):
    """A plugin's ReLU-named layer: -x."""
    type_name = "ReLU"
    examples = [({}, (2, 3))]

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        self.kernels.scale(x.reshape(x.size), -1, y.reshape(y.size))
        return y

    def _backward(self, dl_dy):
        dx = self._buffer("dx", dl_dy.shape)
        self.kernels.scale(dl_dy.reshape(dl_dy.size), -1, dx.reshape(dx.size))
        return dx


class Shadowing:
    @nnumba.hookimpl
    def nnumba_register_layers(self):
        return {"ReLU": Negate}

    @nnumba.hookimpl
    def nnumba_register_models(self):
        return {"negator": lambda: [{"type": "ReLU"}]}


def _installed(plugin, name):
    """``plugin`` as an installed entry point gives it (register_plugin refuses a
    clash at once): in the registry, its clashes warned about and settled."""
    registry = get_registry()
    registry.pm.register(plugin, name=name)
    registry._dists[name] = f"nnumba-{name} 1.0"
    registry._cache.clear()


def _uninstalled(*names):
    registry = get_registry()
    for name in names:
        if registry.pm.has_plugin(name):
            registry.pm.unregister(name=name)
        registry._dists.pop(name, None)
    registry._cache.clear()


@pytest.fixture
def shadowing():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the clash with the built-in ReLU is warned about
        _installed(Shadowing(), "t9shadow")
        yield "t9shadow"
    _uninstalled("t9shadow")


def test_spec_keeps_the_qualified_name_of_a_shadowed_plugin_layer(shadowing):
    model = nnumba.Sequential.from_spec([{"type": "t9shadow:ReLU"}])
    assert model.spec() == [{"type": "t9shadow:ReLU"}]  # was "ReLU": the built-in's
    x = np.array([[-2.0, 3.0]], np.float32)
    again = nnumba.Sequential.from_spec(model.spec())
    np.testing.assert_array_equal(again.predict(x), [[2.0, -3.0]])
    assert nnumba.build([{"type": "ReLU"}]).spec() == [{"type": "ReLU"}]  # built-in: bare


def test_a_plugins_model_builds_its_own_layers(shadowing):
    # the factory says "ReLU", meaning its own: it built the built-in ReLU
    model = nnumba.build("negator")
    assert isinstance(model.layers[0], Negate) and model.spec() == [{"type": "t9shadow:ReLU"}]


def test_a_class_registered_under_another_name_is_specified_by_it():
    class Doubler:
        @nnumba.hookimpl
        def nnumba_register_layers(self):
            return {"Twice": Negate}  # type_name "ReLU": the key is what finds it
    name = nnumba.register_plugin(Doubler(), "t9twice")
    try:
        assert nnumba.Sequential(Negate()).spec() == [{"type": "Twice"}]
    finally:
        nnumba.unregister_plugin(name)


class Scale(nnumba.Layer):
    examples = [({}, (2, 3))]

    def __init__(self):
        super().__init__()
        self.k = self.add_param("k", (1,))

    def reset_parameters(self, rng):
        self.k.value[...] = rng.uniform(1, 2, 1)

    def _forward(self, x):
        self._x = x
        y = self._buffer("y", x.shape)
        self.kernels.scale(x.reshape(x.size), x.dtype.type(self.k.value[0]), y.reshape(y.size))
        return y

    def _backward(self, dl_dy):
        self.k.grad[0] += float((self._x * dl_dy).sum())
        dx = self._buffer("dx", dl_dy.shape)
        self.kernels.scale(dl_dy.reshape(dl_dy.size), dl_dy.dtype.type(self.k.value[0]),
                           dx.reshape(dx.size))
        return dx


def _plugin(layer):
    class Plugin:
        @nnumba.hookimpl
        def nnumba_register_layers(self):
            return {"Scale": layer}
    return Plugin()


def test_a_saved_file_loads_its_layer_after_another_plugin_claims_the_name(tmp_path):
    _installed(_plugin(Scale), "t9first")
    try:
        model = nnumba.Sequential(Scale(), seed=0)
        path = io.save(model, tmp_path / "m.npz")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _installed(_plugin(type("Scale", (Scale,), {})), "t9second")  # claims "Scale" too
            with pytest.raises(nnumba.RegistryError, match="registered twice"):
                nnumba.get_layer("Scale")
            loaded = io.load_model(path)  # "registered twice" before: the record settles it
        assert type(loaded.layers[0]) is Scale
        np.testing.assert_array_equal(loaded.flat_params, model.flat_params)
        assert io.stored_spec(path)[0] == [{"type": "t9first:Scale"}]
    finally:
        _uninstalled("t9second", "t9first")


def test_the_kit_builds_the_layer_as_summary_does():
    class ValuesInInit(Scale):
        def __init__(self):
            super().__init__()
            self.k.value[...] = 1.5
    with pytest.raises(testing.ConformanceError, match=r"built as nnumba summary builds it.*"
                                                       r"set no values in __init__"):
        testing.check_all(ValuesInInit)


def test_contract_slips_are_conformance_errors():
    class NoForward(nnumba.Layer):
        examples = [({}, (2, 3))]

    class Forgetful(Scale):
        def _forward(self, x):
            Scale._forward(self, x)
    with pytest.raises(testing.ConformanceError, match="NoForward does not implement _forward"):
        testing.check_all(NoForward)
    with pytest.raises(testing.ConformanceError, match="_forward returned None"):
        testing.check_all(Forgetful)  # escaped as a ContractError


def test_a_loss_that_broadcasts_its_targets_fails_the_kit():
    class Broadcasting(MSE):
        examples = [({}, (4, 3), "values")]

        def _compute(self, y_hat, y, scale):
            y = np.broadcast_to(y, y_hat.shape) if y.ndim == y_hat.ndim else y[..., 0]
            return MSE._compute(self, y_hat, np.ascontiguousarray(y), scale)
    testing.check_loss(MSE)  # the built-in refuses targets with an extra axis
    with pytest.raises(testing.ConformanceError, match="targets with an extra axis"):
        testing.check_loss(Broadcasting)


def test_the_dataset_kit_calls_the_loader_as_nnumba_does_and_warns_where_root_is_ignored():
    data = Dataset("d", np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]),
                   np.zeros((2, 2), np.float32), np.array([0, 1]), ["a", "b"], "d")

    def no_arguments():
        return data

    def ignores_root(root=None, download=False):
        return data

    def refuses_root(root=None, download=False):
        if root is not None or download:
            raise ValueError("generated: no folder, no download")
        return data
    with pytest.raises(testing.ConformanceError, match=r"loader\(root=None, download=False\)"):
        testing.check_dataset(no_arguments)
    with pytest.warns(UserWarning, match="--data-dir is ignored"):
        testing.check_dataset(ignores_root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert testing.check_dataset(refuses_root) is not None


def test_the_one_thread_warning_is_not_given_for_layers_without_parameters(monkeypatch):
    from nnumba.testing import batch_checks as kit
    monkeypatch.setattr(kit, "get_num_threads", lambda: 1)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        testing.check_all(ReLU)  # nothing to race on: it warned all the same
        assert not seen
        testing.check_all(Scale)
    assert any("one thread" in str(w.message) for w in seen)
