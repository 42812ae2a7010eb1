"""The plugin registry: lookup, suggestions, clashes, broken plugins, autoload switch."""
import importlib.metadata
import json
import subprocess
import sys
import types

import numpy as np
import pytest

import nnumba
from nnumba import hookimpl
from nnumba.errors import RegistryError
from nnumba.layers import ReLU
from nnumba.registry import Registry, register_plugin, unregister_plugin


def test_builtins_register_through_the_hooks():
    registry = Registry(autoload=False)
    layers = registry.entries("layer")
    assert {"Linear", "ReLU", "Tanh", "Sigmoid", "Identity", "Flatten", "Threshold"} <= set(layers)
    assert layers["Linear"].plugin == "nnumba.layers.linear"
    assert {"CrossEntropy", "MSE", "Logistic", "Hinge"} <= set(registry.entries("loss"))
    # Built-ins are ordinary pluggy plugins: the manager lists them by name.
    assert registry.pm.has_plugin("nnumba.layers.linear")


def test_unknown_name_suggests_close_names():
    with pytest.raises(RegistryError, match=r"unknown layer 'Linaer'.*did you mean 'Linear'"):
        nnumba.get_layer("Linaer")
    with pytest.raises(RegistryError, match="did you mean 'ReLU'"):
        nnumba.get_layer("relu")


def test_unknown_name_says_when_installed_plugins_are_not_loaded():
    # A model saved with a plugin layer, loaded with autoload off: the cause is named.
    with pytest.raises(RegistryError, match="NNUMBA_DISABLE_PLUGIN_AUTOLOAD is set"):
        Registry(autoload=False).entry("layer", "SomePluginLayer")
    with pytest.raises(RegistryError) as err:
        Registry(autoload=True).entry("layer", "SomePluginLayer")
    assert "NNUMBA_DISABLE_PLUGIN_AUTOLOAD" not in str(err.value)


def test_runtime_registration_and_clash_names_both_plugins():
    plugin = types.SimpleNamespace(nnumba_register_layers=hookimpl(lambda: {"MyReLU": ReLU}))
    name = nnumba.register_plugin(plugin, name="test-plugin")
    try:
        assert nnumba.get_layer("MyReLU") is ReLU
        assert nnumba.get_registry().entries("layer")["MyReLU"].plugin == "test-plugin"
    finally:
        nnumba.unregister_plugin(name)
    with pytest.raises(RegistryError):
        nnumba.get_layer("MyReLU")

    clash = types.SimpleNamespace(nnumba_register_layers=hookimpl(lambda: {"Linear": ReLU}))
    with pytest.raises(RegistryError, match=r"'Linear' is registered twice.*nnumba\.layers\.linear.*clasher"):
        nnumba.register_plugin(clash, name="clasher")
    # The failed registration left nothing behind.
    assert not nnumba.get_registry().pm.has_plugin("clasher")
    assert nnumba.get_layer("Linear").__name__ == "Linear"


class _FakeDist:
    name, version = "broken-dist", "9.9"


class _FakeEntryPoint:
    name, dist = "broken", _FakeDist()

    def load(self):
        raise ImportError("no module named 'missing_dependency'")


def test_broken_plugin_is_named_and_builtins_still_work(monkeypatch):
    real = importlib.metadata.entry_points

    def fake(**kw):
        return [_FakeEntryPoint()] if kw.get("group") == "nnumba" else real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    with pytest.warns(RuntimeWarning, match=r"'broken' \(from broken-dist 9.9\) failed to load"):
        registry = Registry(autoload=True)
    assert registry.failures[0].plugin == "broken"
    assert "missing_dependency" in registry.failures[0].error
    assert registry.get("layer", "Linear").__name__ == "Linear"


def test_disable_autoload_env_skips_entry_points():
    code = ("import nnumba, json; r = nnumba.get_registry(); "
            "print(json.dumps(sorted(r.pm.list_name_plugin()[i][0] for i in "
            "range(len(r.pm.list_name_plugin())))))")
    env_on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**__import__("os").environ,
                                             "NNUMBA_DISABLE_PLUGIN_AUTOLOAD": "1"})
    names = json.loads(env_on.stdout)
    assert all(n.startswith("nnumba.") for n in names), names


@pytest.mark.parametrize("hidden", [None, "abc", {}, True, 1.5])
def test_mlp_hidden_that_is_no_width_or_list_of_widths_is_a_spec_error(hidden):
    from nnumba.errors import SpecError
    with pytest.raises(SpecError, match="hidden"):
        nnumba.build("mlp", hidden=hidden)


def test_mlp_hidden_takes_a_numpy_integer_or_a_tuple():
    assert len(nnumba.build("mlp", hidden=np.int64(8)).layers) == 4
    assert len(nnumba.build("mlp", hidden=(8, 4)).layers) == 6


@pytest.mark.parametrize("plugin,name,match", [
    (None, None, "a plugin is a module or an object with hook implementations, got None"),
    ("nnumba.layers", None, "a plugin is a module or an object"),
    (types.SimpleNamespace(), "a:b", "without ':'"),
    (types.SimpleNamespace(), " ", "a plugin name is a non-empty string"),
    # a line break split `nnumba plugins`' table, as an entry name's would
    (types.SimpleNamespace(), "two\nlines", "printable characters"),
    (types.SimpleNamespace(), "x" * 101, "at most 100 long"),
])
def test_register_plugin_refuses_what_is_not_a_plugin_or_a_plugin_name(plugin, name, match):
    with pytest.raises(RegistryError, match=match):
        register_plugin(plugin, name=name)


@pytest.mark.parametrize("name", [None, "no such plugin"])
def test_unregister_plugin_names_what_is_registered(name):
    with pytest.raises(RegistryError, match="is registered; registered: .*nnumba.layers"):
        unregister_plugin(name)
