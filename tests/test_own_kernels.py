"""A layer's own kernels per device (``devices = {device: module}``, reached as
``self.own``): the module named for the layer's device, the CPU's on any device of
numpy arrays, and a clear DeviceError for everything else. The CPU/CUDA example
(Softsign in docs/plugins.md) runs in tests/test_docs_plugins.py, on the CUDA
simulator too."""
import sys
import types

import numpy as np
import pytest

import nnumba
from nnumba.device import CPU, CPUDevice, Device, DeviceError
from nnumba.layers import Tanh


def _module(name, scale):
    module = types.ModuleType(name)

    def forward(x, y):
        y[...] = scale * np.tanh(x)
    module.forward = forward
    return module


@pytest.fixture
def modules():
    sys.modules["own_cpu_kernels"] = _module("own_cpu_kernels", 1.0)
    sys.modules["own_other_kernels"] = _module("own_other_kernels", 2.0)
    yield
    for name in ("own_cpu_kernels", "own_other_kernels"):
        sys.modules.pop(name, None)


class Scaled(Tanh):
    """tanh through the layer's own kernel (forward only is enough here)."""
    devices = {"cpu": "own_cpu_kernels", "other": "own_other_kernels"}

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        self.own.forward(x.reshape(x.size), y.reshape(y.size))
        self._y = y
        return y


class NumpyDevice(CPUDevice):
    name = "own-numpy"


class Other(Device):
    name = "other"


class Elsewhere(Device):
    name = "elsewhere"


def test_the_module_of_the_layers_device(modules):
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    layer = Scaled()
    np.testing.assert_allclose(layer.forward(x), np.tanh(x))
    assert layer.own is sys.modules["own_cpu_kernels"]
    assert NumpyDevice().own_kernels(Scaled.devices, "Scaled") is sys.modules["own_cpu_kernels"]
    assert Other().own_kernels(Scaled.devices, "Scaled") is sys.modules["own_other_kernels"]
    assert Scaled.runs_on(CPU) and Scaled.runs_on(NumpyDevice()) and Scaled.runs_on(Other())
    assert not Scaled.runs_on(Elsewhere())
    with pytest.raises(DeviceError, match="runs on cpu, other only.*give devices an? "
                                          "'elsewhere' entry, the module of its own kernels"):
        Scaled().check_device(Elsewhere())


def test_what_self_own_cannot_serve_is_a_clear_error(modules):
    with pytest.raises(DeviceError, match=r"Scaled: self.own takes devices = \{device name: "
                                          r"module .* with one for 'elsewhere'"):
        Elsewhere().own_kernels(Scaled.devices, "Scaled")
    with pytest.raises(DeviceError, match=r"got \('cpu',\)"):
        CPU.own_kernels(("cpu",), "T")  # a tuple names no modules
    with pytest.raises(DeviceError, match=r"its kernels for 'cpu', 'no_such_kernels', do not "
                                          r"import \(ModuleNotFoundError"):
        CPU.own_kernels({"cpu": "no_such_kernels"}, "T")


def test_a_model_holding_such_a_layer_trains(modules):
    model = nnumba.Sequential(nnumba.get_layer("Linear")(2, 3), Scaled(), seed=0)
    before = model.flat_params.copy()
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    nnumba.SGDTrainer(model, nnumba.get_loss("CrossEntropy")(), lr=0.1, batch_size=4, seed=0,
                      precompile=False).fit(x, np.arange(8) % 3, epochs=1)
    assert not np.array_equal(model.flat_params, before)


def test_a_wrong_module_name_fails_when_the_model_moves(modules):
    class Misspelt(Scaled):
        devices = {"cpu": "own_cpu_kernels", "own-numpy": "own_numpy_kernals"}
    model = nnumba.Sequential(Misspelt(), seed=0)
    with pytest.raises(DeviceError, match=r"its kernels for 'own-numpy', 'own_numpy_kernals', "
                                          r"do not import"):
        model.to(NumpyDevice())
    assert model.device is CPU  # refused before anything moved
