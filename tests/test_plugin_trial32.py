"""Plugin trial 32 (an Elman RNN written from the docs alone): `nnumba train` said a
plugin model factory's ZeroDivisionError as a bare "integer division or modulo by
zero" naming no model; a named model's input_shape was never checked ((None, 4), a
sequence model's natural guess, trained but failed summary with words about a
--input-shape nobody gave)."""
import types

import numpy as np
import pytest

import nnumba
from nnumba import hookimpl, testing
from nnumba.cli import main
from nnumba.errors import SpecError
from nnumba.models import NamedModel


def _build_ok(classes: int = 2):
    return [{"type": "Flatten"}, {"type": "Linear", "in_features": 4, "out_features": classes}]


def _build_zdiv(classes: int = 2):
    width = 4 // 0
    return [{"type": "Linear", "in_features": width, "out_features": classes}]


@pytest.fixture
def register():
    names = []

    def add(models):
        name = f"trial32probe{len(names)}"
        nnumba.register_plugin(types.SimpleNamespace(
            nnumba_register_models=hookimpl(lambda: models)), name)
        names.append(name)
    yield add
    for name in names:
        nnumba.unregister_plugin(name)


@pytest.fixture
def data4(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d4.npz"
    np.savez(path, x_train=rng.normal(size=(40, 4)).astype(np.float32),
             y_train=np.arange(40) % 2)
    return str(path)


def _cli(capsys, argv):
    status = main(argv)
    return status, capsys.readouterr().err


@pytest.mark.parametrize("model", [
    NamedModel(_build_zdiv),
    NamedModel(_build_ok, input_shape=lambda **o: (1 / 0,))])
def test_train_names_the_model_whose_plugin_code_raised(register, data4, capsys, model):
    register({"t32-bug": model})
    status, err = _cli(capsys, ["train", "--model", "t32-bug", "--data", data4, "--epochs", "1"])
    assert status != 0 and "error: model 't32-bug'" in err and "division" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("shape", [(None, 4), (0, 4), (4.0,), ("4",), (True, 4), "abc", -4, 4])
def test_a_named_models_input_shape_must_be_sizes(shape):
    """Given as a value: refused where the NamedModel is made, as its train_defaults."""
    with pytest.raises(SpecError, match="input_shape must be None or a tuple of integer sizes"):
        NamedModel(_build_ok, input_shape=shape)


def test_sizes_of_any_integer_kind_and_no_axes_are_taken():
    assert NamedModel(_build_ok, input_shape=(np.int64(4),)).input_shape_for() == (4,)
    assert type(NamedModel(_build_ok, input_shape=[2, 2]).input_shape_for()[0]) is int
    assert NamedModel(_build_ok, input_shape=()).input_shape_for() == ()  # a scalar sample
    assert NamedModel(_build_ok).input_shape_for() is None


def test_a_shape_function_giving_a_free_axis_is_named_by_every_command(register, data4,
                                                                       capsys):
    """From a function, the shape is known only for options: train, summary and
    check_model name the model and what its input_shape must be."""
    register({"t32-free": NamedModel(_build_ok, input_shape=lambda **o: (None, 4))})
    for argv in (["train", "--model", "t32-free", "--data", data4, "--epochs", "1"],
                 ["summary", "t32-free"]):
        status, err = _cli(capsys, argv)
        assert status == 2 and "model 't32-free': input_shape must be None or a tuple" in err, err
    with pytest.raises(testing.ConformanceError, match="model 't32-free': input_shape must"):
        testing.check_model("t32-free")


def test_an_axis_of_any_size_at_zero_is_refused_before_the_kernel():
    """A layer taking (None, 3) got (N, 0, 3) in _forward, where the trial's own kernel
    read h[t - 1] at t = 0 (numba checks no bounds); scikit-learn refuses a sample of
    no features too. Every layer, and a model, refuse samples of no values."""
    from nnumba import Layer
    from nnumba.errors import ShapeError
    from nnumba.layers import ReLU

    class LastStep(Layer):
        def input_shape(self):
            return (None, 3)

        def output_shape(self, input_shape):
            return (3,)

        def _forward(self, x):
            raise AssertionError("reached the kernel")

    for layer, x in ((LastStep(), np.zeros((2, 0, 3), np.float32)),
                     (ReLU(), np.zeros((4, 0), np.float32))):
        with pytest.raises(ShapeError, match="hold no values"):
            layer.forward(x)
        with pytest.raises(ShapeError, match="hold no values"):
            nnumba.Sequential(layer, seed=0).predict(x)
    check_array = pytest.importorskip("sklearn.utils").check_array  # the reference: no features
    with pytest.raises(ValueError, match="0 feature"):
        check_array(np.zeros((4, 0)))
