"""The CUDA path under the CUDA simulator: every kernel against its CPU twin, every
built-in layer's forward and backward on the device against the CPU, and whole
training steps on the device against the same steps on the CPU.

The simulator must be on before numba.cuda is first imported, and the rest of
the suite (tests/test_cuda_ptx.py) needs the real numba.cuda in its process. So
in a normal pytest run this module runs itself in a subprocess with
NUMBA_ENABLE_CUDASIM=1 and reports the outcome as one test; with the variable
set, its tests run directly:

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_cuda_sim.py

The simulator runs each CUDA thread as a Python thread (10^5-10^6 times slower
than numpy), so every size here is tiny. It skips where numba-cuda is absent.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

if importlib.util.find_spec("numba_cuda") is None:
    pytest.skip('numba-cuda is not installed (pip install "nnumba[cuda]")',
                allow_module_level=True)

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"

if not SIMULATED:
    def test_simulator_suite_in_a_subprocess():
        env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
        run = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p",
                              "no:cacheprovider", "-rs"], env=env, capture_output=True,
                             text=True, timeout=1800, cwd=Path(__file__).parent.parent)
        print(run.stdout[-3000:])
        assert run.returncode == 0, (run.stdout[-12000:] + run.stderr[-3000:])

else:
    import nnumba
    from nnumba import GDTrainer, Sequential, SGDTrainer, io, testing
    from nnumba.device import CUDA, DeviceError, to_device, to_host
    from nnumba.errors import DTypeError, LabelError, NonFiniteError
    from nnumba.kernels import KERNELS, cases
    from nnumba.layers import Layer
    from nnumba.losses import MSE, CrossEntropy, Hinge, Logistic, PerceptronCriterion
    from nnumba.registry import get_registry
    from nnumba.testing.simulator import HostOnlyError, real_device_arrays

    is_device_array = CUDA.owns

    @pytest.fixture(autouse=True, scope="module")
    def strict_device_arrays():
        # The simulator's device arrays would do numpy's work, a GPU's do not: held to
        # numba.cuda's DeviceNDArray API, code that works only in the simulator fails.
        with real_device_arrays():
            yield

    # ---- every kernel of the interface against its CPU twin -----------------------
    @pytest.mark.parametrize("name", KERNELS)
    def test_kernels_match_their_cpu_twins_float32(name):
        results = cases.run_twin(name, "tiny", np.float32)
        bad = {k: cases.mismatch(*v) for k, v in results.items() if cases.mismatch(*v) > 1e-5}
        assert results and not bad, bad

    @pytest.mark.parametrize("name", KERNELS)
    def test_kernels_match_their_cpu_twins_float64(name):
        results = cases.run_twin(name, "tiny", np.float64)
        bad = {k: cases.mismatch(*v) for k, v in results.items() if cases.mismatch(*v) > 1e-12}
        assert results and not bad, bad

    def test_matmul_refuses_shapes_that_do_not_fit():
        a, b = to_device(np.ones((3, 4), np.float32)), to_device(np.ones((5, 2), np.float32))
        with pytest.raises(ValueError, match="does not give"):
            CUDA.kernels.matmul(a, b, CUDA.empty((3, 2), np.float32))

    # ---- every registered layer, plugins included, on the device against the CPU --
    LAYERS = sorted(get_registry().entries("layer").items())

    @pytest.mark.parametrize("name, entry", LAYERS, ids=[name for name, _ in LAYERS])
    def test_layer_on_cuda_matches_the_cpu(name, entry):
        if not testing.check_device(entry.obj, "cuda"):
            pytest.skip(f"{name} runs on {', '.join(entry.obj.devices)} only")

    def test_every_builtin_layer_runs_on_cuda():
        builtin = [name for name, e in LAYERS if e.distribution == "nnumba (built-in)"]
        assert builtin and all(get_registry().get("layer", n).runs_on(CUDA) for n in builtin)

    def test_a_layer_on_cuda_refuses_host_arrays_and_nan_clearly():
        layer = nnumba.get_layer("Linear")(3, 2).to("cuda")
        with pytest.raises(DTypeError, match=r"Linear.*cuda device array"):
            layer.forward(np.ones((2, 3), np.float32))
        with pytest.raises(NonFiniteError, match="Linear"):
            layer.forward(to_device(np.array([[1, np.nan, 2]], np.float32)))
        with pytest.raises(DTypeError, match="float32"):
            layer.forward(to_device(np.ones((2, 3))))

    def test_cpu_only_layers_are_refused_by_name_before_anything_moves():
        class NumpyBody(Layer):
            devices = ("cpu",)

            def _forward(self, x):
                return x

            def _backward(self, dl_dy):
                return dl_dy

        model = Sequential(nnumba.get_layer("Linear")(3, 2), NumpyBody())
        with pytest.raises(DeviceError, match=r"NumpyBody #1 .*runs on cpu only"):
            model.to("cuda")
        assert model.device.name == "cpu" and isinstance(model.flat_params, np.ndarray)
        assert model.layers[0].device.name == "cpu"

    # ---- models, losses, training -------------------------------------------------
    SPEC = [{"type": "Conv2d", "in_channels": 1, "out_channels": 3, "kernel_size": 3},
            {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
            {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 2,
             "padding": 1},
            {"type": "ReLU"}, {"type": "AvgPool2d", "kernel_size": 2},
            {"type": "Flatten"},
            {"type": "Linear", "in_features": 16, "out_features": 6}, {"type": "Tanh"},
            {"type": "Linear", "in_features": 6, "out_features": 3}]

    def _data(n=8):
        rng = np.random.default_rng(0)
        return rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, n)

    def test_sgd_steps_on_cuda_equal_the_cpu_run():
        x, y = _data()
        runs = {}
        for device in ("cpu", "cuda"):
            model = Sequential.from_spec(SPEC, seed=1).to(device)
            trainer = SGDTrainer(model, CrossEntropy(), lr=0.1, momentum=0.9, batch_size=4,
                                 seed=3)
            history = trainer.fit(x, y, epochs=1)  # two shuffled mini-batches
            runs[device] = (to_host(model.flat_params), history.last("train_loss"))
        (w_cpu, loss_cpu), (w_gpu, loss_gpu) = runs["cpu"], runs["cuda"]
        assert not np.array_equal(w_cpu, Sequential.from_spec(SPEC, seed=1).flat_params)
        np.testing.assert_allclose(w_gpu, w_cpu, rtol=1e-5, atol=1e-6)
        assert loss_gpu == pytest.approx(loss_cpu, rel=1e-5)

    def test_gradient_descent_on_cuda_equals_the_cpu_run():
        # GD weights each batch's gradient: the loss's device scaling kernel.
        rng = np.random.default_rng(2)
        x, y = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((6, 2))
        spec = [{"type": "Linear", "in_features": 5, "out_features": 4}, {"type": "Sigmoid"},
                {"type": "Linear", "in_features": 4, "out_features": 2}]
        out = []
        for device in ("cpu", "cuda"):
            model = Sequential.from_spec(spec, seed=4).to(device)
            GDTrainer(model, MSE(), lr=0.5, batch_size=4).fit(x, y.astype(np.float32))
            out.append(to_host(model.flat_params))
        np.testing.assert_allclose(out[1], out[0], rtol=1e-5, atol=1e-6)

    def test_predict_round_trip_and_save_from_cuda(tmp_path):
        x, _ = _data(5)
        model = Sequential.from_spec(SPEC, seed=2)
        want = model.predict(x)
        model.to("cuda")
        assert model.device is CUDA and is_device_array(model.flat_params)
        got = model.predict(x, batch_size=2)
        assert isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert model.layers[0].weight.value.shape == (3, 1, 3, 3)
        twin = model.copy()
        np.testing.assert_array_equal(to_host(twin.flat_params), to_host(model.flat_params))
        io.save(model.to("cpu"), tmp_path / "w.npz")
        np.testing.assert_allclose(nnumba.load_model(tmp_path / "w.npz").predict(x), want,
                                   rtol=1e-6)

    def test_losses_on_cuda_match_the_cpu_and_check_labels():
        rng = np.random.default_rng(5)
        z = rng.standard_normal((6, 4)).astype(np.float32)
        labels = rng.integers(0, 4, 6)
        pm = np.where(rng.random(6) < 0.5, -1, 1)
        for loss_cls, target, pred in ((CrossEntropy, labels, z), (MSE, z[::-1].copy(), z),
                                       (Logistic, pm, z[:, :1].copy()),
                                       (Hinge, pm, z[:, 0].copy()),
                                       (PerceptronCriterion, pm, z[:, 0].copy())):
            for reduction in ("mean", "sum"):
                cpu, gpu = loss_cls(reduction=reduction), loss_cls(reduction=reduction)
                value = cpu.forward(pred, target)
                assert gpu.forward(to_device(pred), target) == pytest.approx(value, rel=1e-6)
                np.testing.assert_allclose(to_host(gpu.backward(0.5)), cpu.backward(0.5),
                                           rtol=1e-6, err_msg=loss_cls.__name__)
        with pytest.raises(LabelError, match=r"\[0, 4\)"):
            CrossEntropy().forward(to_device(z), labels + 1)
        with pytest.raises(LabelError, match=r"\[0, 4\)"):  # device labels: after the kernel
            CrossEntropy().forward(to_device(z), to_device((labels + 1).astype(np.int64)))
        for loss_cls in (Logistic, Hinge, PerceptronCriterion):  # device signs: after it too
            for bad in (0.0, 5.0, np.nan):  # NaN: the host's error (fuzz round 37)
                signs = pm.astype(np.float32)
                signs[2] = bad
                error, said = (NonFiniteError, "NaN") if np.isnan(bad) else \
                    (LabelError, "labels must be -1 or \\+1")
                with pytest.raises(error, match=said):
                    loss_cls().forward(to_device(z[:, 0].copy()), to_device(signs))
        # the SVM's weight penalty on device weights, as on the host
        w = z[:2].copy()
        assert Hinge(lam=0.1).penalty([("0.weight", SimpleNamespace(value=to_device(w)))]) == \
            pytest.approx(0.1 * float(np.vdot(w, w)), rel=1e-6)

    def test_info_describes_the_simulated_device():
        from nnumba.device import get_device
        assert get_device("cuda").describe()["available"] is True
        assert "simulator" in get_device("cuda").describe()["gpu"].lower()

    # ---- the device kit holds a plugin's layer to a GPU's arrays -----------------------
    class NumpyBody(Layer):
        """A layer whose body is numpy: the simulator's device arrays would run it (the
        kit's strict arrays do not), a GPU's cannot."""
        examples = [({}, (3, 4))]

        def _forward(self, x):
            y = self._buffer("y", x.shape)
            y[...] = np.where(x > 0, x, 0.5 * x)
            return y

        def _backward(self, dl_dy):
            return dl_dy

    def test_the_device_kit_refuses_a_numpy_body_that_only_the_simulator_runs():
        with pytest.raises(testing.ConformanceError,
                           match=r"NumpyBody: its forward on cuda raised HostOnlyError.*"
                                 r"self\.kernels.*devices = \(\"cpu\",\)"):
            testing.check_device(NumpyBody, "cuda")

    def test_real_device_arrays_refuse_numpy_work_and_restore_the_simulator_after():
        a = to_device(np.ones(3, np.float32))
        with pytest.raises(HostOnlyError, match="comparison"):
            a > 0
        with pytest.raises(AttributeError, match="'sum' is not part of"):
            a.sum()
        assert not hasattr(a, "__array_interface__")  # numpy sees no array in it
        with real_device_arrays():  # nested in this module's: restores that one after
            with pytest.raises(HostOnlyError, match="arithmetic"):
                a + 1
        with pytest.raises(HostOnlyError):
            a * 2
        assert a.copy_to_host().sum() == 3 and a.reshape(3, 1).shape == (3, 1)

    def _linear_on_cuda(seed):
        layer = nnumba.get_layer("Linear")(3, 2)
        layer.reset_parameters(np.random.default_rng(seed))
        w, b = (np.array(to_host(p.value), np.float64) for p in layer.params().values())
        return layer.to("cuda"), w, b

    def test_a_model_of_layers_moved_to_the_device_is_on_the_device():
        """(fuzz round 58) Sequential(layer.to("cuda")) said it was on the cpu while its
        layer stayed on cuda, with its parameters in a host buffer: predict and fit were
        refused ("Linear #0 is on cuda") and to("cpu") did nothing.  A model is on its
        first layer's device.  Reference: the closed form x W^T + b, then ReLU."""
        layer, w, b = _linear_on_cuda(1)
        model = Sequential(layer, nnumba.get_layer("ReLU")())  # the ReLU on the cpu
        assert model.device is CUDA and all(s.device is CUDA for s in model.steps)
        assert is_device_array(model.flat_params)
        x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
        want = np.maximum(x.astype(np.float64) @ w.T + b, 0)
        np.testing.assert_allclose(model.predict(x), want, rtol=1e-5, atol=1e-6)
        model.to("cpu")
        assert all(layer.device is model.device for layer in model.layers)
        np.testing.assert_allclose(model.predict(x), want, rtol=1e-5, atol=1e-6)

    def test_a_model_of_cpu_layers_and_a_device_layer_is_on_the_first_ones_device():
        host = nnumba.get_layer("Linear")(3, 3)
        device_layer, _, _ = _linear_on_cuda(2)
        model = Sequential(host, device_layer, seed=0)
        assert model.device is nnumba.device.CPU and device_layer.device is model.device
        x = np.ones((2, 3), np.float32)
        (w1, b1), (w2, b2) = [[np.array(p.value, np.float64) for p in layer.params().values()]
                              for layer in model.layers]
        np.testing.assert_allclose(model.predict(x), (x @ w1.T + b1) @ w2.T + b2, rtol=1e-5)

    from test_plugin_authoring import Doubling

    class CudaOnly(Doubling):
        """2 x on the device only (a body against self.kernels, declared cuda-only)."""
        devices = ("cuda",)

    class CpuOnly(Layer):
        devices = ("cpu",)

        def _forward(self, x):
            return x

        output_is_view = True

    def test_a_model_of_device_only_layers_moved_there_builds_and_is_refused_whole():
        """(review 46) A cuda-only layer is not moved through the cpu as the model is
        built; a cpu-only layer beside a device layer is refused before anything moves.
        Reference: the closed form 2 (x W^T + b)."""
        layer, w, b = _linear_on_cuda(3)
        model = Sequential(layer, CudaOnly().to("cuda"))
        assert model.device is CUDA
        x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
        np.testing.assert_allclose(model.predict(x), 2 * (x @ w.T + b), rtol=1e-5, atol=1e-6)
        other, _, _ = _linear_on_cuda(4)
        with pytest.raises(DeviceError, match="CpuOnly"):
            Sequential(other, CpuOnly())
        assert other.device is CUDA and is_device_array(other.params()["weight"].value)
