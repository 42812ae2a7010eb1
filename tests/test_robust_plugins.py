"""No plugin can take the others down: failing hooks, malformed hooks and name clashes
cost the plugin at fault only; built-ins always win; PLUGIN:NAME reaches any entry."""
import importlib.metadata
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import nnumba
from nnumba import hookimpl, precompile as pc, registry as registry_module
from nnumba.errors import RegistryError
from nnumba.layers import ReLU, Sigmoid, Tanh
from nnumba.registry import Registry


class EvilReLU(Tanh):
    """A third-party layer that claims the built-in's name."""
    type_name = "ReLU"


def _plugin(**hooks):
    return types.SimpleNamespace(**{f"nnumba_register_{k}": hookimpl(v) for k, v in hooks.items()})


def _failing_import():
    import nnumba_no_such_dependency  # noqa: F401 - as a hook that imports lazily would


EVIL = _plugin(layers=lambda: {"ReLU": EvilReLU, "Foo": Tanh}, losses=_failing_import,
               models=lambda: ["mlp"])
OTHER = _plugin(layers=lambda: {"Foo": Sigmoid, 3: Sigmoid, "Bar": 42, "a:b": Sigmoid})


class _Dist:
    def __init__(self, name):
        self.name, self.version = name, "1.0"


class _EntryPoint:
    def __init__(self, name, plugin):
        self.name, self.dist, self._plugin = name, _Dist(f"{name}-dist"), plugin

    def load(self):
        return self._plugin


@pytest.fixture
def installed(monkeypatch):
    """A Registry as if the plugins 'evil' and 'other' were installed."""
    real = importlib.metadata.entry_points

    def fake(**kw):
        if kw.get("group") == "nnumba":
            return [_EntryPoint("evil", EVIL), _EntryPoint("other", OTHER)]
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    with pytest.warns(RuntimeWarning) as warned:
        registry = Registry(autoload=True)
    return registry, [str(w.message) for w in warned]


def test_failing_and_malformed_hooks_cost_their_plugin_only(installed):
    registry, warned = installed
    failures = {(f.plugin, f.error) for f in registry.failures}
    assert ("evil", "nnumba_register_losses raised ModuleNotFoundError: No module named "
                    "'nnumba_no_such_dependency'") in failures
    assert ("evil", "nnumba_register_models returned a list, not a dict {name: model}") in failures
    assert any(p == "other" and "'Bar': not a subclass of nnumba.Layer" in e for p, e in failures)
    assert any(p == "other" and "3: a name must be" in e for p, e in failures)
    assert any(p == "other" and "'a:b': a name must be" in e for p, e in failures)
    # Each is warned about, naming the plugin and its distribution.
    assert any("nnumba plugin 'evil' (from evil-dist 1.0): nnumba_register_losses raised" in w
               for w in warned)
    # The rest works: the built-ins, and the failing plugin's other hooks.
    assert registry.get("loss", "CrossEntropy").__name__ == "CrossEntropy"
    assert registry.get("model", "mlp") is not None
    assert registry.get("layer", "evil:Foo") is Tanh


def test_builtins_win_a_clash_and_the_plugins_entry_stays_reachable(installed):
    registry, warned = installed
    assert registry.get("layer", "ReLU") is ReLU
    assert registry.entries("layer")["ReLU"].plugin == "nnumba.layers.activation"
    assert registry.get("layer", "evil:ReLU") is EvilReLU
    assert registry.get("layer", "nnumba.layers.activation:ReLU") is ReLU
    assert ("layer 'ReLU' of plugin 'evil' (evil-dist 1.0) clashes with the built-in "
            "'nnumba.layers.activation', which wins; the plugin's is 'evil:ReLU'") in warned
    rows = {name: e for name, e in registry.all_entries("layer")}
    assert rows["ReLU"].obj is ReLU and rows["evil:ReLU"].obj is EvilReLU


def test_two_plugins_claiming_a_name_make_it_ambiguous(installed):
    registry, warned = installed
    with pytest.raises(RegistryError, match=r"'Foo' is registered twice: by plugin 'evil' "
                                            r"\(evil-dist 1.0\) and plugin 'other'.*'evil:Foo' "
                                            r"or 'other:Foo'"):
        registry.get("layer", "Foo")
    assert registry.get("layer", "other:Foo") is Sigmoid
    assert any("'Foo' is registered twice" in w for w in warned)
    assert "Foo" not in registry.entries("layer")
    with pytest.raises(RegistryError, match="did you mean 'evil:ReLU'"):
        registry.get("layer", "evil:RelU")


def test_a_shadowed_layer_is_saved_under_the_name_that_finds_it(installed, monkeypatch, tmp_path):
    registry, _ = installed
    monkeypatch.setattr(registry_module, "_registry", registry)
    model = nnumba.Sequential.from_spec([{"type": "evil:ReLU"}, {"type": "ReLU"}])
    assert [type(layer) for layer in model.layers] == [EvilReLU, ReLU]
    twin = nnumba.load_model(nnumba.save(model, tmp_path / "m.npz"))
    assert [type(layer) for layer in twin.layers] == [EvilReLU, ReLU]


@pytest.mark.parametrize("plugin, message", [
    (_plugin(layers=_failing_import), "raised ModuleNotFoundError"),
    (_plugin(layers=lambda: [EvilReLU]), "returned a list"),
    (_plugin(layers=lambda: {"Evil": 42}), "not a subclass of nnumba.Layer"),
    (_plugin(layers=lambda: {"ReLU": EvilReLU}), "'ReLU' is registered twice"),
])
def test_run_time_registration_refuses_at_once_and_keeps_nothing(plugin, message):
    with pytest.raises(RegistryError, match=message):
        nnumba.register_plugin(plugin, name="bad-at-run-time")
    assert not nnumba.get_registry().pm.has_plugin("bad-at-run-time")
    assert nnumba.get_layer("ReLU") is ReLU
    assert all(f.plugin != "bad-at-run-time" for f in nnumba.get_registry().failures)


def test_run_time_registration_of_a_taken_plugin_name_is_a_registry_error():
    with pytest.raises(RegistryError, match="nnumba.layers.linear"):
        nnumba.register_plugin(_plugin(layers=lambda: {}), name="nnumba.layers.linear")


def test_registering_the_same_plugin_again_names_the_name_it_has():
    plugin = _plugin(layers=lambda: {})
    name = nnumba.register_plugin(plugin, name="first-name")
    try:
        with pytest.raises(RegistryError, match="registered already, as plugin 'first-name'"):
            nnumba.register_plugin(plugin, name="second-name")
        assert nnumba.get_registry().pm.get_name(plugin) == "first-name"
    finally:
        nnumba.unregister_plugin(name)


# ---- as installed: the CLI ----------------------------------------------------------------

EVIL_MODULE = '''
from nnumba import hookimpl
from nnumba.layers import Tanh

class ReLU(Tanh):
    type_name = "ReLU"

@hookimpl
def nnumba_register_layers():
    return {"ReLU": ReLU}

@hookimpl
def nnumba_register_losses():
    import nnumba_no_such_dependency
'''


@pytest.fixture
def evil_installed(tmp_path):
    """An environment in which a distribution 'evil-plugin' is installed."""
    (tmp_path / "evil_plugin.py").write_text(EVIL_MODULE)
    info = tmp_path / "evil_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nnumba]\nevil = evil_plugin\n")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "NNUMBA_DISABLE_PLUGIN_AUTOLOAD": "0"}


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "nnumba", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_plugins_command_shows_where_each_name_comes_from(evil_installed):
    out = _cli(evil_installed, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    layers = {e["name"]: e for e in report["layer"]}
    assert layers["ReLU"]["distribution"] == "nnumba (built-in)"
    assert layers["evil:ReLU"] == {"name": "evil:ReLU", "registered_as": "ReLU", "plugin": "evil",
                                   "distribution": "evil-plugin 1.0", "summary": "",
                                   "note": "'ReLU' is the built-in layer"}
    assert any("nnumba_register_losses raised ModuleNotFoundError" in f["error"]
               for f in report["failed"])
    # The warnings: one line each, naming the plugin, no source line.
    assert "nnumba: warning: layer 'ReLU' of plugin 'evil' (evil-plugin 1.0)" in out.stderr
    assert "Traceback" not in out.stderr and "registry.py" not in out.stderr
    text = _cli(evil_installed, "plugins").stdout
    assert "evil:ReLU" in text and "Built-ins win a clash" in text


@pytest.mark.slow
def test_a_clashing_plugin_does_not_break_the_default_training(evil_installed, tmp_path):
    out = _cli(evil_installed, "train", "--epochs", "1", "--train-size", "300", "--json",
               "--save", str(tmp_path / "w.npz"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["test_accuracy"] > 0.3
    assert nnumba.load_model(tmp_path / "w.npz").spec()[2]["type"] == "ReLU"


# ---- precompile: layers registered at run time ------------------------------------------

DOUBLER_MODULE = '''
from nnumba import Layer, hookimpl

class Doubler(Layer):
    examples = [({}, (3, 4))]

    def _forward(self, x):
        return 2 * x

    def _backward(self, dl_dy):
        return 2 * dl_dy if self.needs_input_grad else None

@hookimpl
def nnumba_register_layers():
    return {"Doubler": Doubler}
'''


def _worker(job):
    return subprocess.run([sys.executable, "-m", "nnumba.precompile"], input=json.dumps(job),
                          capture_output=True, text=True, timeout=300)


def test_precompile_workers_get_the_layers_registered_at_run_time(tmp_path, monkeypatch):
    (tmp_path / "doubler_plugin.py").write_text(DOUBLER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))  # as a notebook's sys.path.append
    import doubler_plugin
    name = nnumba.register_plugin(doubler_plugin)
    try:
        model = nnumba.Sequential.from_spec([{"type": "Doubler"}, {"type": "Flatten"}])
        recipe = pc._recipe(model)
        assert recipe["classes"] == {"Doubler": "doubler_plugin:Doubler"}
        job = {**recipe, "dtype": "float32", "input_shape": [3, 4], "input_grad": False,
               "layers": [0, 1]}
        done = _worker(job)
        assert done.returncode == 0, done.stderr
        # Without the classes, a fresh process does not know the layer: the failure fixed.
        failed = _worker({**job, "classes": {}, "path": []})
        assert failed.returncode != 0 and "unknown layer 'Doubler'" in failed.stderr
    finally:
        nnumba.unregister_plugin(name)


def test_precompile_skips_with_the_reason_when_a_class_cannot_be_imported():
    class Local(EvilReLU):  # defined in a function: no worker can import it
        type_name = "LocalLayer"

    name = nnumba.register_plugin(_plugin(layers=lambda: {"LocalLayer": Local}))
    try:
        model = nnumba.Sequential.from_spec([{"type": "LocalLayer"}])
        info = pc.precompile(model, nnumba.get_loss("MSE")(), np.zeros((2, 4), np.float32),
                             np.zeros((2, 4), np.float32), processes=2)
        assert "registered at run time" in info["skipped"]
        assert "define it in a module" in info["skipped"]
    finally:
        nnumba.unregister_plugin(name)


# ---- an author's usual slips: each named, never silent --------------------------------

def _no_return():
    {"Forgot": Tanh}  # noqa: B018 - the slip under test: no `return`


# listed whole after a guess: a hook that is none (trainers) gets no false lead
_HOOKS = ("the hooks are nnumba_register_datasets, nnumba_register_devices, "
          "nnumba_register_layers, nnumba_register_losses, nnumba_register_models")


def _layers_without_hookimpl():
    return {"Undecorated": Tanh}


@pytest.mark.parametrize("plugin, message", [
    (_plugin(layers=_no_return), "nnumba_register_layers returned None, not a dict "
                                 "{name: layer}: is its `return` missing?"),
    (types.SimpleNamespace(nnumba_register_layer=hookimpl(lambda: {"Typo": Tanh})),
     "nnumba_register_layer is not an nnumba hook and is never called "
     f"(did you mean nnumba_register_layers? {_HOOKS})"),
    (types.SimpleNamespace(nnumba_register_layers=_layers_without_hookimpl),
     "nnumba_register_layers is never called: decorate it with @nnumba.hookimpl"),
])
def test_a_missing_return_a_misspelt_hook_and_a_missing_hookimpl_are_refused(plugin, message):
    with pytest.raises(RegistryError) as caught:
        nnumba.register_plugin(plugin, name="slip")
    assert str(caught.value) == f"plugin 'slip' not registered: {message}"
    assert not nnumba.get_registry().pm.has_plugin("slip")


def test_an_installed_plugins_slips_are_listed_and_named_where_its_entry_is_missing(monkeypatch):
    slips = types.SimpleNamespace(
        nnumba_register_losses=hookimpl(_no_return),
        nnumba_register_model=hookimpl(lambda: {"slip-net": lambda: []}),
        nnumba_register_layers=hookimpl(lambda: {"Fine": Sigmoid}))
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [
        _EntryPoint("slips", slips)] if kw.get("group") == "nnumba" else real(**kw))
    with pytest.warns(RuntimeWarning) as warned:
        registry = Registry(autoload=True)
    failures = {(f.plugin, f.error) for f in registry.failures}
    assert ("slips", "nnumba_register_losses returned None, not a dict {name: loss}: is its "
                     "`return` missing?") in failures
    assert ("slips", "nnumba_register_model is not an nnumba hook and is never called "
                     f"(did you mean nnumba_register_models? {_HOOKS})") in failures
    assert any("nnumba plugin 'slips' (from slips-dist 1.0): nnumba_register_model is not"
               in str(w.message) for w in warned)
    assert registry.get("layer", "Fine") is Sigmoid   # its good hook still counts
    with pytest.raises(RegistryError, match=r"unknown loss 'Huber'.*\. Plugin 'slips' failed "
                                            r"in part or whole: see nnumba plugins\.$"):
        registry.get("loss", "Huber")
