"""A second outside author's trial: a data set, a model and a loss with an option
(two moons, a focal loss), and a device of its own with a layer written against
its kernel set.  Each slip it made is one nnumba error naming the plugin, the data
set or the device, and a plugin kernel set need not return its outputs."""
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import nnumba
from nnumba import testing
from nnumba.data import Dataset, DatasetError, check_dataset, load_dataset
from nnumba.device import CPUDevice, Device, DeviceError, get_device
from nnumba.errors import RegistryError, SpecError
from nnumba.kernels import KERNELS
from nnumba.kernels import cpu as cpu_kernels
from nnumba.layers.validation import number

X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
Y = (np.arange(40) % 2).astype(np.int64)


def moons(root=None, download=False):
    if root is not None or download:
        raise ValueError("moons is generated: it takes no folder and no download")
    rng = np.random.default_rng(0)
    t = rng.uniform(0, np.pi, 60)
    y = np.arange(60) % 2
    x = np.stack([np.where(y, 1 - np.cos(t), np.cos(t)),
                  np.where(y, 0.5 - np.sin(t), np.sin(t))], axis=1)
    x = (x + rng.normal(0, 0.1, x.shape)).astype(np.float32)
    return Dataset("moons", x[:40], y[:40].astype(np.int64), x[40:], y[40:].astype(np.int64),
                   ["upper", "lower"], "two moons")


def _loader(**fields):
    parts = dict(x_train=X, y_train=Y, x_test=X[:10], y_test=Y[:10], classes=["a", "b"])
    parts.update(fields)

    def loader(root=None, download=False):
        return Dataset("bad", parts["x_train"], parts["y_train"], parts["x_test"],
                       parts["y_test"], parts["classes"], "bad")
    return loader


def _raises(root=None, download=False):
    raise RuntimeError("boom in loader")


BAD = {
    "t2-lists": (_loader(x_train=X.tolist()), r"x_train is a list; return numpy arrays"),
    "t2-f64": (_loader(x_train=X.astype(np.float64)), r"x_train is float64; .*float32"),
    "t2-str": (_loader(y_train=np.array(["a", "b"] * 20)), r"number the classes 0, 1"),
    "t2-flabels": (_loader(y_train=Y.astype(np.float32)), r"y_train is float32"),
    "t2-len": (_loader(y_train=Y[:30]), r"shape \(30,\) for 40 inputs"),
    "t2-feat": (_loader(x_test=np.zeros((10, 3), np.float32)), r"x_test's samples"),
    "t2-range": (_loader(y_train=Y * 3), r"class numbers from 0 to 3.*\[0, 2\)"),
    "t2-nan": (_loader(x_train=np.full((40, 2), np.nan, np.float32)), r"NaN"),
    "t2-1d": (_loader(x_train=X[:, 0].copy()), r"shape \(40,\)"),
    "t2-tuple": (lambda root=None, download=False: (X, Y), r"returned a tuple, not an"),
    "t2-raise": (_raises, r"its loader raised RuntimeError: boom in loader"),
}


@pytest.fixture
def plugin():
    class Plugin:
        @nnumba.hookimpl
        def nnumba_register_datasets(self):
            return {"t2-moons": moons, **{name: f for name, (f, _) in BAD.items()}}
    name = nnumba.register_plugin(Plugin(), "trial2")
    yield name
    nnumba.unregister_plugin(name)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_loader_that_breaks_the_contract_is_one_error_naming_it(plugin, name):
    with pytest.raises(DatasetError, match=rf"data set '{name}' \(plugin 'trial2'\): "
                                           rf".*{BAD[name][1]}"):
        load_dataset(name)


def test_a_good_loader_passes_the_checks_and_the_kit(plugin):
    data = load_dataset("t2-moons")
    assert data.x_train.shape == (40, 2) and check_dataset(data) is data
    assert testing.check_dataset(moons).classes == ["upper", "lower"]
    for name in ("mnist-5k",):  # the built-ins meet their own contract
        assert load_dataset(name).x_train.dtype == np.float32


def test_the_dataset_kit_names_a_loader_that_is_not_deterministic():
    def drifting(root=None, download=False):
        data = moons()
        data.x_train = data.x_train + np.float32(np.random.default_rng().normal())
        return data
    with pytest.raises(testing.ConformanceError, match="differs between two calls"):
        testing.check_dataset(drifting)
    with pytest.raises(testing.ConformanceError, match="y_train is float32"):
        testing.check_dataset(_loader(y_train=Y.astype(np.float32)))


def test_number_takes_none_for_no_bound_as_integer_does():
    assert number("FocalLoss", "gamma", 3.5, 0, None) == 3.5
    with pytest.raises(SpecError, match=r"gamma must be a finite number >= 0"):
        number("FocalLoss", "gamma", -1, 0, None)


# ---- devices ----------------------------------------------------------------------

def _kernel_module(name, **own):
    """A kernel set: the CPU's, with ``own`` replacing some; none returns anything."""
    module = types.ModuleType(name)
    for k in KERNELS:
        setattr(module, k, getattr(cpu_kernels, k))
    for k, f in own.items():
        setattr(module, k, f)
    sys.modules[name] = module
    return module


def _np_matmul(a, b, out, trans_a=False, trans_b=False, accumulate=False):
    r = (a.T if trans_a else a) @ (b.T if trans_b else b)
    if accumulate:
        out += r
    else:
        out[...] = r


def _np_fill(a, value):
    a[...] = value


def _np_gather_rows(src, idx, dst):
    dst[...] = src[idx]


class NumpyDevice(CPUDevice):
    name = "t2-numpy"
    kernel_set = "t2_numpy_kernels"


class Partial(CPUDevice):
    name = "t2-partial"
    kernel_set = "t2_partial_kernels"


class NoModule(CPUDevice):
    name = "t2-nomodule"
    kernel_set = "t2_no_such_module"


class Bare(Device):
    name = "t2-bare"
    kernel_set = "nnumba.kernels.cpu"


@pytest.fixture
def devices():
    _kernel_module("t2_numpy_kernels", matmul=_np_matmul, fill=_np_fill,
                   gather_rows=_np_gather_rows)
    partial = types.ModuleType("t2_partial_kernels")
    partial.matmul = cpu_kernels.matmul
    sys.modules["t2_partial_kernels"] = partial
    found = {d.name: d for d in (NumpyDevice(), Partial(), NoModule(), Bare())}

    class Plugin:
        @nnumba.hookimpl
        def nnumba_register_devices(self):
            return found
    name = nnumba.register_plugin(Plugin(), "trial2dev")
    yield found
    nnumba.unregister_plugin(name)
    for module in ("t2_numpy_kernels", "t2_partial_kernels"):
        sys.modules.pop(module, None)


def test_a_kernel_set_that_returns_nothing_trains_like_the_cpu(devices):
    data = moons()
    weights = []
    for where in ("cpu", "t2-numpy"):
        model = nnumba.Sequential.from_spec(
            [{"type": "Linear", "in_features": 2, "out_features": 8}, {"type": "Tanh"},
             {"type": "Linear", "in_features": 8, "out_features": 2}], seed=0).to(where)
        assert model.device is get_device(where)
        nnumba.SGDTrainer(model, nnumba.get_loss("CrossEntropy")(), lr=0.1, momentum=0.9,
                          batch_size=10, seed=0, precompile=False).fit(
            data.x_train, data.y_train, epochs=2)
        weights.append(model.flat_params.copy())
    np.testing.assert_allclose(weights[1], weights[0], atol=1e-5)
    assert testing.check_device(nnumba.get_layer("Linear"), "t2-numpy")


def test_a_kernel_set_missing_kernels_is_refused_at_to_naming_them(devices):
    model = nnumba.build("mlp", inputs=2, hidden=[4], classes=2, seed=0)
    lacking = len(nnumba.kernels.KERNELS) - 1  # all but matmul
    with pytest.raises(DeviceError, match=rf"device 't2-partial': its kernel set "
                                          rf"'t2_partial_kernels' lacks {lacking} kernel\(s\)"
                                          rf".*add_bias"):
        model.to("t2-partial")
    assert model.device is get_device("cpu")  # nothing moved
    with pytest.raises(DeviceError, match=r"'t2_no_such_module' does not import "
                                          r"\(ModuleNotFoundError"):
        model.to("t2-nomodule")
    with pytest.raises(DeviceError, match=r"device 't2-bare' \(Bare\) does not implement "
                                          r"to_device\(\)"):
        model.to("t2-bare")


def test_a_device_registered_as_a_class_or_a_string_is_refused():
    for wrong in (CPUDevice, "cpu"):
        class Plugin:
            @nnumba.hookimpl
            def nnumba_register_devices(self, wrong=wrong):
                return {"t2-wrong": wrong}
        with pytest.raises(RegistryError, match=r"device 't2-wrong': not an instance of a "
                                                r"nnumba.device.Device subclass"):
            nnumba.register_plugin(Plugin(), "trial2wrong")


# ---- the command line, through an installed entry point ----------------------------

def test_train_names_a_plugin_loader_that_fails(tmp_path):
    pkg = tmp_path / "site" / "t2_bad"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import numpy as np
        from nnumba import hookimpl

        def lists(root=None, download=False):
            from nnumba.data import Dataset
            x = [[0.0, 1.0]] * 4
            return Dataset("t2-lists", x, [0, 1, 0, 1], x, [0, 1, 0, 1], ["a", "b"], "")

        def raises(root=None, download=False):
            raise KeyError("oops")

        @hookimpl
        def nnumba_register_datasets():
            return {"t2-lists": lists, "t2-raise": raises}
    """))
    info = tmp_path / "site" / "t2_bad-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: t2-bad\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nnumba]\nt2bad = t2_bad\n")
    env = {"PYTHONPATH": f"{tmp_path / 'site'}:{':'.join(sys.path)}", "PATH": "/usr/bin:/bin"}
    # a list where the contract says an array, or what it raised, is its bug (1); NaN in
    # what it returned may be the user's data (status 2: tests/test_plugin_trial46.py)
    for name, want, status in (("t2-lists", "x_train is a list", 1),
                               ("t2-raise", "its loader raised KeyError: 'oops'", 1)):
        run = subprocess.run([sys.executable, "-m", "nnumba", "train", "--dataset", name,
                              "--epochs", "1"], capture_output=True, text=True, env=env,
                             timeout=300)
        assert run.returncode == status, run.stderr
        assert f"data set {name!r} (plugin 't2bad'): {want}" in run.stderr, run.stderr
        assert "please report" not in run.stderr and "Traceback" not in run.stderr


def test_a_cpu_only_layer_runs_on_a_device_of_numpy_arrays_and_nowhere_else(devices):
    """devices = ("cpu",) means numpy arrays: a CPUDevice subclass holds them (the third
    plugin author's CPU-kernel layer was refused on cpu-checked), CUDA does not."""
    from nnumba.device import CUDA

    class CpuOnlyTanh(nnumba.get_layer("Tanh")):
        devices = ("cpu",)

    def model():
        return nnumba.Sequential(nnumba.get_layer("Linear")(2, 8), CpuOnlyTanh(),
                                 nnumba.get_layer("Linear")(8, 2), seed=0)
    data = moons()
    weights = []
    for where in ("cpu", "t2-numpy"):
        net = model().to(where)
        nnumba.SGDTrainer(net, nnumba.get_loss("CrossEntropy")(), lr=0.1, batch_size=10,
                          seed=0, precompile=False).fit(data.x_train, data.y_train, epochs=1)
        weights.append(net.flat_params.copy())
    np.testing.assert_allclose(weights[1], weights[0], atol=1e-5)
    assert CpuOnlyTanh.runs_on(devices["t2-numpy"]) and not CpuOnlyTanh.runs_on(CUDA)
    with pytest.raises(DeviceError, match="runs on cpu only"):
        CpuOnlyTanh().check_device(CUDA)
