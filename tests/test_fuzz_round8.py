"""Fuzz round 8 and plugin trial 8 (the API from the outside): each test fails on
the code before its fix, and checks against numpy or the same computation done
another way."""
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import io, testing
from nnumba.errors import ContractError, SaveError, TooLargeError, WeightsError
from nnumba.layers import Linear, ReLU
from nnumba.losses import MSE, CrossEntropy
from nnumba.testing import ConformanceError
from nnumba.train import SGDTrainer
from scale_layer import _Scale, _variant


def _zeroes_x(self, x):
    y = _Scale._forward(self, x)
    self._x = x.copy()
    x[...] = 0  # the slip: x is the layer before's output
    return y


def _zeroes_dy(self, dl_dy):
    dx = _Scale._backward(self, dl_dy)
    dl_dy[...] = 0  # the slip: harmless here, but the array is another layer's
    return dx


def _half_in_float32(self, dl_dy):
    before = self.a.grad.copy()
    dx = _Scale._backward(self, dl_dy)
    if dl_dy.dtype == np.float32:
        self.a.grad[...] = before + 0.5 * (self.a.grad - before)
    return dx


def _float32_dx(self, dl_dy):
    return _Scale._backward(self, dl_dy).astype(np.float32)


def _global_random(self, rng):
    self.a.value[...] = 1 + 0.1 * np.random.standard_normal(1)


@pytest.mark.parametrize("cls, says", [
    (_variant("ZeroesX", _forward=_zeroes_x), "_forward wrote into its input x"),
    (_variant("ZeroesDy", _backward=_zeroes_dy), "_backward wrote into dl_dy"),
    (_variant("HalfIn32", _backward=_half_in_float32),
     "in float32, the gradient for a differs from float64's"),
    (_variant("Float32Dx", _backward=_float32_dx), "gradient for input is float32"),
    (_variant("GlobalRandom", reset_parameters=_global_random),
     "two copies reset from generators of one seed differ in a"),
    (_variant("BadFlops", flops=lambda self, shape: 3), r"flops\(\(4,\)\) returned 3"),
])
def test_the_kit_names_each_slip(cls, says):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one-thread race warning
        with pytest.raises(ConformanceError, match=says):
            testing.check_all(cls)


def test_the_kit_still_passes_the_correct_layer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        testing.check_all(_Scale)


def test_a_layer_that_zeroes_its_input_would_have_stopped_earlier_layers_training():
    """Why the kit refuses it: in a model the ReLU's output is that input, and the
    Linear before gets zero gradients (compared with the correct layer's)."""
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    grads = {}
    for cls in (_Scale, _variant("ZeroesX", _forward=_zeroes_x)):
        model = nnumba.Sequential(Linear(4, 4), ReLU(), cls(), seed=0).astype(np.float64)
        loss = MSE()
        loss.forward(model.forward(x), t)
        model.backward(loss.backward())
        grads[cls.__name__] = dict(model.params())["0.weight"].grad.copy()
    assert np.abs(grads["_Scale"]).sum() > 0 and not grads["ZeroesX"].any()


def test_a_forgotten_return_in_forward_or_in_a_loss_names_the_culprit():
    forgot = _variant("ForgotReturn", _forward=lambda self, x: None)
    with pytest.raises(ContractError, match=r"ForgotReturn #0: _forward returned None"):
        nnumba.Sequential(forgot()).predict(np.ones((2, 3), np.float32))

    class NoCompute(MSE):
        def _compute(self, y_hat, y, scale):
            MSE._compute(self, y_hat, y, scale)
    with pytest.raises(ContractError, match=r"NoCompute loss: _compute returned None"):
        NoCompute().forward(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32))


def test_summary_names_a_layer_whose_flops_are_malformed():
    from nnumba.summary import summarize
    bad = _variant("BadFlops", flops=lambda self, shape: (1, "2", 3))

    class Plugin:
        @nnumba.hookimpl
        def nnumba_register_layers(self):
            return {"BadFlops": bad}
    name = nnumba.register_plugin(Plugin(), "bad-flops")
    try:
        with pytest.raises(ContractError, match=r"BadFlops #0: flops\(\(4,\)\) returned"):
            summarize(nnumba.Sequential(bad()), (4,))
    finally:
        nnumba.unregister_plugin(name)


def test_class_names_are_counted_against_the_outputs_without_an_input_shape(tmp_path):
    model = nnumba.build("lenet", classes=3)
    with pytest.raises(SaveError, match=r"7 classes for a model whose output per sample "
                                        r"has shape \(3,\)"):
        io.save(model, tmp_path / "m.npz", classes=list("abcdefg"))
    io.save(model, tmp_path / "m.npz", classes=list("abc"))  # three outputs, three names


@pytest.mark.parametrize("shape", [[1, -5, 28], [0, 28, 28], [1, 0, 28]])  # ([]: ids)
def test_a_stored_input_shape_with_empty_or_negative_sizes_is_a_weights_error(tmp_path,
                                                                            shape):
    path = io.save(nnumba.build("lenet"), tmp_path / "m.npz", input_shape=(1, 28, 28))
    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["__nnumba_spec__"]))
    arrays["__nnumba_spec__"] = np.array(json.dumps({**meta, "input_shape": shape}))
    np.savez(path, **arrays)
    with pytest.raises(WeightsError, match="stored input_shape must be a tuple of sizes >= 1"):
        io.stored_info(path)


def test_classify_refuses_a_stored_image_size_past_pillows_limit(tmp_path):
    """A model with an adaptive pool takes any size, so save accepts a huge one;
    classify resized to it and was killed for memory."""
    pytest.importorskip("PIL")
    from PIL import Image
    model = nnumba.build([{"type": "Conv2d", "in_channels": 3, "out_channels": 4,
                           "kernel_size": 3}, {"type": "AdaptiveAvgPool2d", "output_size": 1},
                          {"type": "Flatten"}, {"type": "Linear", "in_features": 4,
                                                "out_features": 2}])
    path = io.save(model, tmp_path / "big.npz", input_shape=(3, 30000, 30000))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    done = subprocess.run([sys.executable, "-m", "nnumba", "classify", str(tmp_path / "x.png"),
                           "--model", str(path), "--weights", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"the image size stored in {path} is 900,000,000 pixels" in done.stderr


def test_classify_hints_at_size_where_its_guess_does_not_fit(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image
    from nnumba.cli import main
    path = io.save(nnumba.build("lenet"), tmp_path / "lenet.npz")  # no stored size
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "x.png")
    code = main(["classify", str(tmp_path / "x.png"), "--model", str(path), "--weights",
                 str(path)])
    assert code == 2 and "give the image size the model takes with --size H,W" in \
        capsys.readouterr().err


def test_a_batch_size_no_array_can_hold_is_refused_by_the_trainer_when_set():
    model = nnumba.build("mlp")
    with pytest.raises(TooLargeError, match="SGDTrainer: batch_size is 9223372036854775808"):
        SGDTrainer(model, CrossEntropy(), batch_size=2**63)
