"""Plugin trial 36: an outside author's device (every kernel in numpy), data sets and
a named model, from the docs alone; they matched the CPU to rounding. What the
device kit missed, and errors from broken device plugins that did not name them.
The tests register throw-away devices with nnumba.register_plugin (tests/throwaway_device.py) and unregister them afterwards."""

import numpy as np
import pytest

import nnumba
import nnumba.cli
from nnumba import testing
from nnumba.device import CPUDevice, DeviceError
from throwaway_device import device_with_kernels


def run_device_kit(device):
    """What the docs offer a device author (docs/plugins.md, Devices): the kernel kit,
    then check_device over every registered layer."""
    testing.check_kernels(device)
    for name in sorted(nnumba.get_registry().entries("layer")):
        testing.check_device(nnumba.get_layer(name), device)


def cli(argv):
    try:
        return nnumba.cli.main(argv)
    except SystemExit as e:
        return e.code


# F1 -----------------------------------------------------------------------------
def test_device_kit_catches_a_wrong_fused_kernel(tmp_path):
    """add_bias_relu that forgets the ReLU: every model with Linear + ReLU is wrong."""
    with device_with_kernels(tmp_path, """
        def add_bias_relu(y, b):
            y += b
    """) as dev:
        x = np.random.default_rng(0).normal(size=(5, 6))
        a = nnumba.build("mlp", inputs=6, hidden=[4], classes=3, seed=0).astype("float64")
        b = nnumba.build("mlp", inputs=6, hidden=[4], classes=3, seed=0).astype("float64").to(dev)
        assert np.abs(a.forward(x) - b.forward(x)).max() > 1e-3   # the device really is wrong
        with pytest.raises(testing.ConformanceError):
            run_device_kit(dev)


def test_device_kit_catches_a_wrong_sgd_step(tmp_path):
    """sgd_step that ignores momentum and weight decay: every training run is wrong."""
    with device_with_kernels(tmp_path, """
        def sgd_step(params, grads, velocity, lr, momentum, weight_decay):
            params -= params.dtype.type(lr) * grads
    """) as dev:
        with pytest.raises(testing.ConformanceError):
            run_device_kit(dev)


# F2 -----------------------------------------------------------------------------
def test_a_kernel_with_the_wrong_signature_is_a_device_error_at_to(tmp_path):
    """docs: model.to checks the set first (a missing kernel is a DeviceError naming the
    device); a kernel that cannot take the CPU set's arguments gives a bare TypeError
    inside Linear._forward instead, naming neither the device nor its plugin."""
    with device_with_kernels(tmp_path, """
        def matmul(a, b, out):
            out[...] = a @ b
    """) as dev:
        model = nnumba.build("mlp", inputs=4, hidden=[3], classes=2, seed=0)
        with pytest.raises(DeviceError, match=rf"(?s){dev}.*matmul"):
            model.to(dev)
            model.forward(np.ones((2, 4), np.float32))


def test_cli_names_the_device_whose_kernel_has_the_wrong_signature(tmp_path, capsys):
    with device_with_kernels(tmp_path, """
        def matmul(a, b, out):
            out[...] = a @ b
    """) as dev:
        cli(["train", "--epochs", "1", "--train-size", "50", "--test-size", "20", "--device", dev])
        err = capsys.readouterr().err
        assert dev in err and "please report it" not in err, err  # was a bare TypeError


# F3 -----------------------------------------------------------------------------
def test_cli_status_1_for_a_device_plugin_lacking_kernels(tmp_path, capsys):
    """README: status 2 for what the user can fix, 1 for a bug (a plugin's or nnumba's).
    A device whose kernel set lacks kernels is its plugin's bug; nnumba train exits 2."""
    with device_with_kernels(tmp_path, """
        del sgd_step
    """) as dev:
        rc = cli(["train", "--epochs", "1", "--train-size", "50", "--test-size", "20", "--device", dev])
        assert "sgd_step" in capsys.readouterr().err
        assert rc == 1


# F4 -----------------------------------------------------------------------------
def test_device_without_kernel_set_says_so():
    """kernel_set = None (a subclass of Device that never set it, or set it from a config
    that was empty): the DeviceError shows AttributeError: 'NoneType' object has
    no attribute 'startswith' instead of saying the device names no kernel set."""
    class NoSet(CPUDevice):
        """No kernel set."""
        name = "t36noset"
        kernel_set = None

    class Plugin:
        @staticmethod
        @nnumba.hookimpl
        def nnumba_register_devices():
            return {"t36noset": NoSet()}

    nnumba.register_plugin(Plugin, "t36noset-plugin")
    try:
        with pytest.raises(DeviceError) as info:
            nnumba.build("logreg", inputs=3, classes=2, seed=0).to("t36noset")
        assert "kernel_set" in str(info.value)
        assert "startswith" not in str(info.value) and "NoneType" not in str(info.value)
    finally:
        nnumba.unregister_plugin("t36noset-plugin")


# F5 -----------------------------------------------------------------------------
def test_cli_data_given_a_dataset_name_points_to_dataset(capsys):
    """nnumba train --data mnist-5k: 'data file mnist-5k does not exist' — the name is a
    registered data set; the error should say --dataset mnist-5k."""
    rc = cli(["train", "--data", "mnist-5k", "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--dataset" in err, err


def test_device_kit_passes_the_cpu_set_on_a_device_of_its_own(tmp_path):
    """The kit is no stricter than the CPU set itself: a device running it unchanged
    passes, every kernel compared in both dtypes."""
    with device_with_kernels(tmp_path, "") as dev:
        assert testing.check_kernels(dev) >= 2 * len(nnumba.kernels.KERNELS)


def test_device_kit_catches_a_loss_kernel_a_layer_never_runs(tmp_path):
    with device_with_kernels(tmp_path, """
        def squared_error(yhat, y, scale, losses, dl_dyhat):
            cpu.squared_error(yhat, y, scale, losses, dl_dyhat)
            dl_dyhat *= 2
    """) as dev:
        with pytest.raises(testing.ConformanceError, match="squared_error"):
            testing.check_kernels(dev)


def test_info_says_a_device_plugin_lacking_kernels_is_not_available(tmp_path, capsys):
    import json
    with device_with_kernels(tmp_path, """
        del sgd_step
    """) as dev:
        assert cli(["info", "--json"]) in (0, None)
        info = json.loads(capsys.readouterr().out)
        assert dev not in info["devices"]
        assert "sgd_step" in info["device_details"][dev]["reason"]
