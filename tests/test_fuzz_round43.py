"""Fuzz round 43: ~470 broken devices, 66 broken layers and ~60 broken registrations
(all refused, clearly, but these): a kernel writing into an input passed the kernel
kit, a device named with capitals could never be found, a device kernel's own error
was the user's (status 2), a layer's _backward or output_shape returning garbage
gave a bare error or blamed the next layer, and info named every CPU-memory device
"cpu"."""
import contextlib
import io
import json
import sys
import textwrap
import types

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.device import CPUDevice
from nnumba.errors import NnumbaError, RegistryError
from nnumba.kernels import KERNELS, cpu


@contextlib.contextmanager
def _device(name, **kernels):
    """A CPUDevice registered at run time whose kernel set is the CPU set's with
    ``kernels`` replaced."""
    module = types.ModuleType(f"fuzz43_ks_{abs(hash(name))}")
    for k in KERNELS:
        setattr(module, k, getattr(cpu, k))
    for k, v in kernels.items():
        setattr(module, k, v)
    sys.modules[module.__name__] = module
    dev = type("Fuzz43Device", (CPUDevice,), {"name": name, "kernel_set": module.__name__})()
    plugin = type("P", (), {"nnumba_register_devices": nnumba.hookimpl(lambda self: {name: dev})})()
    plugin_name = nnumba.register_plugin(plugin)
    try:
        yield dev
    finally:
        nnumba.unregister_plugin(plugin_name)
        sys.modules.pop(module.__name__, None)


def _two_steps(device):
    """Loss values and weights after two SGD steps of a small MLP on ``device``."""
    model = nnumba.build("mlp", inputs=4, hidden=[5], classes=3, seed=0).to(device)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 3, 8)
    loss, opt, losses = nnumba.get_loss("CrossEntropy")(), nnumba.SGD(model, lr=0.1), []
    for _ in range(2):
        model.zero_grad()
        losses.append(loss.forward(model.forward(x), y))
        model.backward(loss.backward())
        opt.step()
    return np.array(losses), model.flat_params.copy()


# ---- 1. check_kernels passes a kernel that writes into its inputs ------------------

def test_check_kernels_refuses_a_kernel_that_writes_into_its_input():
    def add_bias_relu(y, b):            # right output, then scribbles on the bias it read
        cpu.add_bias_relu(y, b)
        b *= 0.5
    with _device("fuzz43-scribble", add_bias_relu=add_bias_relu) as dev:
        # the reference: the same model and steps on the CPU train differently
        got, want = _two_steps(dev.name), _two_steps("cpu")
        assert not np.allclose(got[1], want[1])
        # check_device of the layers passes (the fused step is a model's only) ...
        from nnumba.layers.activation import ReLU
        from nnumba.layers.linear import Linear
        assert testing.check_device(Linear, dev.name) and testing.check_device(ReLU, dev.name)
        # ... so the kernel kit is the one place that can see it
        with pytest.raises(testing.ConformanceError, match="add_bias_relu"):
            testing.check_kernels(dev.name)


# ---- 2. a device name with a capital letter is accepted, then never found ----------

def test_a_device_registered_with_capitals_is_usable_or_refused():
    dev = type("Up", (CPUDevice,), {"name": "MyGPU", "kernel_set": "nnumba.kernels.cpu"})()
    plugin = type("P", (), {"nnumba_register_devices": nnumba.hookimpl(lambda self: {"MyGPU": dev})})()
    try:
        name = nnumba.register_plugin(plugin)
    except RegistryError:
        return  # refusing the name at registration is a fix too
    try:
        model = nnumba.build([{"type": "ReLU"}])
        model.to("MyGPU")          # was: RegistryError "unknown device 'mygpu'; did you mean 'MyGPU'?"
        assert model.device is dev
        np.testing.assert_array_equal(model.forward(np.array([[-1.0, 2.0]], np.float32)),
                                      [[0.0, 2.0]])
    finally:
        nnumba.unregister_plugin(name)


# ---- 3. a plugin kernel's ValueError / a bad all_finite: status 2, plugin unnamed --

@pytest.fixture
def installed_device_plugin(tmp_path, monkeypatch):
    """A plugin package on disk (as an installed one is), registering devices whose
    kernel sets live in the package."""
    pkg = tmp_path / "fuzz43_plug"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    head = ("from nnumba.kernels import KERNELS, cpu as _cpu\n"
            "globals().update({_k: getattr(_cpu, _k) for _k in KERNELS})\n")
    (pkg / "ks_value.py").write_text(head + textwrap.dedent("""
        def matmul(a, b, out, trans_a=False, trans_b=False, accumulate=False):
            out[...] = a @ b          # forgot trans_b: numpy's broadcast ValueError
        """))
    (pkg / "ks_finite.py").write_text(head + "def all_finite(x):\n    return None\n")
    (pkg / "plugin.py").write_text(textwrap.dedent("""
        from nnumba import hookimpl
        from nnumba.device import CPUDevice
        class V(CPUDevice):
            name, kernel_set = "fuzz43-value", "fuzz43_plug.ks_value"
        class F(CPUDevice):
            name, kernel_set = "fuzz43-finite", "fuzz43_plug.ks_finite"
        @hookimpl
        def nnumba_register_devices():
            return {"fuzz43-value": V(), "fuzz43-finite": F()}
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    module = importlib.import_module("fuzz43_plug.plugin")
    name = nnumba.register_plugin(module, name="fuzz43plug")
    yield name
    nnumba.unregister_plugin(name)
    for m in [m for m in sys.modules if m.startswith("fuzz43_plug")]:
        del sys.modules[m]


def _cli(argv):
    from nnumba.cli import main
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, err.getvalue()


@pytest.mark.parametrize("device", ["fuzz43-value", "fuzz43-finite"])
def test_a_device_kernels_bug_exits_1_naming_the_plugin(installed_device_plugin, device):
    rc, err = _cli(["train", "--device", device, "--epochs", "1", "--train-size", "50",
                    "--test-size", "20"])
    # README: status 2 for what the user can fix, 1 for a bug (a plugin's or nnumba's);
    # was: status 2 and "plugin kernel ..."/"all_finite returned None" without the plugin
    assert rc == 1, err
    assert "fuzz43plug" in err, err


# ---- 4. a layer's _backward / output_shape returning garbage: bare errors ----------

def _layer(**methods):
    def _forward(self, x):
        y = self._buffer("y", x.shape)
        y[...] = 2 * x
        return y

    def _backward(self, g):
        d = self._buffer("dx", g.shape)
        d[...] = 2 * g
        return d
    ns = {"examples": [({}, (3, 4))], "_forward": _forward, "_backward": _backward, **methods}
    return type("Fuzz43Double", (Layer,), ns)


@contextlib.contextmanager
def _registered(cls):
    plugin = type("P", (), {"nnumba_register_layers":
                            nnumba.hookimpl(lambda self: {"Fuzz43Double": cls})})()
    name = nnumba.register_plugin(plugin)
    try:
        yield nnumba.build([{"type": "Linear", "in_features": 4, "out_features": 4},
                            {"type": "Fuzz43Double"},
                            {"type": "Linear", "in_features": 4, "out_features": 2}])
    finally:
        nnumba.unregister_plugin(name)


def test_backward_returning_a_list_is_an_nnumba_error_naming_the_layer():
    cls = _layer(_backward=lambda self, g: (2 * g).tolist())
    with _registered(cls) as model:
        y = model.forward(np.ones((3, 4), np.float32))
        # _forward returning a list is a ContractError naming the layer; _backward's is
        # a bare AttributeError from model.py ("'list' object has no attribute 'shape'")
        with pytest.raises(NnumbaError, match="Fuzz43Double"):
            model.backward(np.ones_like(y))


@pytest.mark.parametrize("bad", [None, "abc"])
def test_output_shape_returning_garbage_is_an_nnumba_error_naming_the_layer(bad):
    cls = _layer(output_shape=lambda self, s: bad)
    with _registered(cls) as model:
        # was: None -> bare TypeError in model._step_shapes; "abc" -> ShapeError that
        # blames the next layer: "Linear #2: expected input of shape (N, 4), got (3, 'a', 'b', 'c')"
        with pytest.raises(NnumbaError, match="Fuzz43Double"):
            model.forward(np.ones((3, 4), np.float32))


# ---- 5. nnumba info --json calls every CPUDevice subclass "cpu" --------------------

def test_info_json_names_a_plugin_device_by_its_own_name():
    with _device("fuzz43-named"):
        from nnumba.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(["info", "--json"]) == 0
        details = json.loads(out.getvalue())["device_details"]["fuzz43-named"]
        assert details["name"] == "fuzz43-named", details   # was: "cpu"
