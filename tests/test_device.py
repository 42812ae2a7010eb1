"""Device choice on a machine without a usable GPU (any install, simulator off):
the CPU is the default, CUDA is refused with a clear error and never a silent
fallback, and the CPU path does not import numba.cuda."""
import json
import os
from collections import Counter
import subprocess
import sys

import numpy as np
import pytest

import nnumba
from nnumba.device import (CPU, CUDA, CPUDevice, DeviceError, DeviceUnavailableError,
                           get_device, to_host)
from nnumba.layers import Layer
from nnumba.registry import get_registry

needs_no_cuda = pytest.mark.skipif(
    os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or CUDA.available(),
    reason="CUDA (or its simulator) is available here")


def test_the_cpu_is_the_default_and_both_devices_come_through_the_hook():
    model = nnumba.build("mlp", hidden=(4,))
    assert model.device is CPU and model.to("cpu") is model
    entries = get_registry().entries("device")
    assert {"cpu", "cuda"} <= set(entries)
    assert entries["cuda"].distribution == "nnumba (built-in)"
    assert get_device("cpu") is CPU


@needs_no_cuda
def test_asking_for_cuda_without_it_is_a_clear_error_not_a_fallback():
    model = nnumba.build("mlp", hidden=(4,))
    before = model.flat_params.copy()
    with pytest.raises(DeviceUnavailableError, match=r"'cuda' is not available: .*"
                       r"(numba-cuda|GPU|CUDA)") as err:
        model.to("cuda")
    assert "\n" not in str(err.value)
    assert model.device is CPU and isinstance(model.flat_params, np.ndarray)
    np.testing.assert_array_equal(model.flat_params, before)
    with pytest.raises(DeviceUnavailableError):
        nnumba.get_layer("Linear")(2, 2).to("cuda")


@needs_no_cuda
def test_train_with_device_cuda_fails_clearly_on_the_command_line():
    run = subprocess.run([sys.executable, "-m", "nnumba", "train", "--device", "cuda",
                          "--epochs", "1", "--train-size", "100"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2
    assert "nnumba train: error: device 'cuda' is not available" in run.stderr
    assert "Traceback" not in run.stderr and "epoch" not in run.stdout


def test_unknown_devices_are_named():
    with pytest.raises(nnumba.RegistryError, match="unknown device 'tpu'") as info:
        get_device("tpu")
    assert "cpu" in str(info.value) and "cuda" in str(info.value)  # (a plugin's may be between)


def test_layers_that_run_on_the_cpu_only_are_refused_by_name():
    class NumpyBody(Layer):
        devices = ("cpu",)

        def _forward(self, x):
            return x

    model = nnumba.Sequential(nnumba.get_layer("ReLU")(), NumpyBody())
    model.layers[0].check_device(CUDA)  # written against the kernel set: any device
    with pytest.raises(DeviceError, match=r"NumpyBody #1 .*runs on cpu only"):
        model.layers[1].check_device(CUDA)
    builtin = {name: e.obj for name, e in get_registry().entries("layer").items()
               if e.distribution == "nnumba (built-in)"}
    assert all(cls.runs_on(CUDA) for cls in builtin.values()), \
        [name for name, cls in builtin.items() if not cls.runs_on(CUDA)]


class _CountingKernels:
    """The CPU kernel set, every call counted."""

    def __init__(self):
        self.calls = Counter()

    def __getattr__(self, name):
        kernel = getattr(CPU.kernels, name)

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return kernel(*args, **kwargs)
        return counted


class _CountingDevice(CPUDevice):
    """A third device, registered through the hook as a plugin's would be."""
    name = "counting"

    def _load_kernels(self):
        return _CountingKernels()


def test_a_third_device_comes_through_the_hook_and_trains_every_layer_there():
    device = _CountingDevice()

    class Plugin:
        @nnumba.hookimpl
        def nnumba_register_devices(self):
            return {"counting": device}

    name = nnumba.register_plugin(Plugin())
    try:
        x = np.random.default_rng(0).random((40, 1, 28, 28), dtype=np.float32)
        y = np.arange(40) % 10
        weights = []
        for where in ("cpu", "counting"):
            model = nnumba.build("lenet", seed=0).to(where)
            assert model.device is get_device(where)
            nnumba.SGDTrainer(model, nnumba.get_loss("CrossEntropy")(), lr=0.05, momentum=0.9,
                              batch_size=20, seed=1, precompile=False).fit(x, y)
            weights.append(model.flat_params.copy())
        np.testing.assert_array_equal(weights[1], weights[0])
        calls = device.kernels.calls
        # 2 steps: conv1 with its ReLU and pool in one kernel, conv2 then ReLU + pool
        assert calls["conv2d_relu_maxpool2d_forward"] == 2 and calls["conv2d_forward"] == 2
        assert calls["relu_maxpool2d_forward"] == 2 and calls["conv2d_relu_maxpool2d_backward"] == 2
        assert calls["matmul"] > 0 and calls["sgd_step"] == 2
    finally:
        nnumba.unregister_plugin(name)


def test_info_reports_devices_versions_and_threading():
    run = subprocess.run([sys.executable, "-m", "nnumba", "info", "--json"],
                         capture_output=True, text=True, check=True, timeout=120)
    info = json.loads(run.stdout)
    assert "cpu" in info["devices"] and info["numba"]
    assert {"cpu", "cuda"} <= set(info["device_details"])
    assert info["device_details"]["cpu"]["available"] is True
    cuda = info["device_details"]["cuda"]
    assert cuda["available"] or cuda["reason"]
    assert "numba_cuda" in info and info["threading_layer"]


def test_the_cpu_path_never_imports_numba_cuda():
    code = ("import sys, numpy as np, nnumba\n"
            "m = nnumba.build('lenet')\n"
            "x = np.zeros((4, 1, 28, 28), np.float32) + 0.5\n"
            "nnumba.SGDTrainer(m, nnumba.get_loss('CrossEntropy')(), batch_size=2)"
            ".fit(x, np.arange(4) % 10)\n"
            "assert 'numba.cuda' not in sys.modules, 'numba.cuda was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300,
                   env={k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"})


def test_to_host_passes_numpy_arrays_through():
    a = np.arange(3.0)
    assert to_host(a) is a
