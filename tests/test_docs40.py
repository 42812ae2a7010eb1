"""Docs walk 40 (the public API's docstrings against its behaviour): the methods a
user's own loop calls say what they do (backward adds into the gradients); help() of
a trainer names its settings and their defaults; every exception a docstring names
is an nnumba error importable from nnumba and nnumba.errors; History.last answers a
typo alike before and after the first epoch; the kit's docstrings name what it
exports, and check_rejections passes a correct float32 layer; train_perceptron's
callback is documented; help() of losses, io and checkpoint lists their API only."""
import importlib
import inspect

import numpy as np
import pytest

import nnumba
from nnumba import errors, testing
from nnumba.layers import Dropout, Linear
from nnumba.losses import CrossEntropy
from nnumba.train import History


@pytest.mark.parametrize("owner, name", [
    (nnumba.Layer, "backward"), (nnumba.Layer, "train"), (nnumba.Layer, "eval"),
    (nnumba.Layer, "zero_grad"), (nnumba.Layer, "runs_on"), (nnumba.Sequential, "zero_grad"),
    (nnumba.Sequential, "copy"), (nnumba.Sequential, "astype"), (nnumba.Sequential, "train"),
    (nnumba.Sequential, "eval"), (nnumba.Sequential, "num_params"),
    (nnumba.Sequential, "reset_parameters"), (nnumba.SGD, "step")])
def test_the_methods_of_a_users_own_loop_have_docstrings(owner, name):
    assert inspect.getdoc(getattr(owner, name))


def test_backward_says_it_adds_into_the_gradients_as_it_does():
    m = nnumba.Sequential(Linear(3, 2), seed=0).astype("float64")
    x = np.random.default_rng(0).standard_normal((4, 3))
    m.backward(np.ones_like(m.forward(x)))
    once = m.flat_grads.copy()
    m.backward(np.ones_like(m.forward(x)))
    np.testing.assert_allclose(m.flat_grads, 2 * once)  # closed form: twice the same
    m.zero_grad()
    assert not m.flat_grads.any()
    for method in (nnumba.Layer.backward, nnumba.Sequential.backward):
        assert "add" in inspect.getdoc(method) and "zero_grad()" in inspect.getdoc(method)


@pytest.mark.parametrize("trainer", [nnumba.SGDTrainer, nnumba.GDTrainer])
def test_help_of_a_trainer_names_its_settings_and_their_defaults(trainer):
    doc = inspect.getdoc(trainer)
    for name in ("lr", "momentum", "weight_decay", "batch_size", "seed", "optimizer",
                 "progress", "callbacks", "precompile"):
        assert f"``{name}``" in doc, name
    t = trainer(nnumba.Sequential(Linear(2, 2), seed=0), CrossEntropy())
    assert "``lr`` (0.01)" in doc and t.lr == 0.01
    assert "``momentum`` (0)" in doc and t.momentum == 0
    assert "``batch_size`` (100)" in doc and t.batch_size == 100


@pytest.mark.parametrize("attr", ["batch_size", "loss", "model"])
def test_a_callback_changing_what_fit_follows_gets_an_nnumba_error(attr):
    x = np.random.default_rng(0).standard_normal((12, 4)).astype(np.float32)
    y = np.arange(12) % 2
    value = {"batch_size": 1, "loss": CrossEntropy(),
             "model": nnumba.Sequential(Linear(4, 2), seed=1)}[attr]
    trainer = nnumba.SGDTrainer(nnumba.Sequential(Linear(4, 2), seed=0), CrossEntropy(),
                                lr=0.1, batch_size=4, precompile=False,
                                callbacks=[lambda t, row: setattr(t, attr, value)])
    with pytest.raises(nnumba.FitRunningError, match="between fit calls"):
        trainer.fit(x, y, epochs=2)
    assert issubclass(nnumba.FitRunningError, (errors.NnumbaError, RuntimeError))


def test_history_last_answers_a_typo_alike_before_and_after_an_epoch():
    for history in (History(), History([{"epoch": 1, "train_loss": 0.5, "seconds": 0.1}])):
        with pytest.raises(KeyError, match="test_acuracy"):
            history.last("test_acuracy")
        assert history.last("test_accuracy") is None  # a key rows may hold: no test set
    assert History([{"epoch": 3, "train_loss": 0.5}]).last("epoch") == 3


@pytest.mark.parametrize("name", ["DeviceUnavailableError", "DeviceError", "TooLargeError",
                                  "TrainingDiverged", "SaveError", "MissingFileError",
                                  "DatasetError", "DataFileError", "FileFormatError",
                                  "FitRunningError"])
def test_every_documented_exception_is_in_nnumba_errors_and_at_the_top(name):
    cls = getattr(errors, name)
    assert getattr(nnumba, name) is cls and name in nnumba.__all__
    assert issubclass(cls, errors.NnumbaError)


def test_the_modules_that_raised_them_still_name_the_same_classes():
    from nnumba import data, device, train
    from nnumba.data.check import DatasetError
    from nnumba.distributed.launch import MPIUnavailableError
    assert device.DeviceUnavailableError is errors.DeviceUnavailableError
    assert device.DeviceError is errors.DeviceError
    assert train.TrainingDiverged is errors.TrainingDiverged
    assert data.DataFileError is errors.DataFileError and DatasetError is errors.DatasetError
    assert MPIUnavailableError is errors.MPIUnavailableError


@pytest.mark.parametrize("name", ["check_float32_modes", "check_eval_gradient", "LARGE"])
def test_names_in_the_kits_docstrings_exist(name):
    assert hasattr(testing, name) and name in testing.__all__


@pytest.mark.parametrize("name", ["check_gradients", "check_rejections"])
def test_exported_kit_functions_have_docstrings(name):
    assert inspect.getdoc(getattr(testing, name))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_rejections_passes_a_correct_layer_of_either_dtype(dtype):
    layer = Linear(3, 2).astype(dtype)
    testing.check_rejections(layer, np.random.default_rng(0).standard_normal((2, 3)).astype(dtype))


def test_train_perceptron_documents_its_callback_as_it_calls_it():
    doc = inspect.getdoc(nnumba.train_perceptron)
    assert "``callback(row)``" in doc
    rows = []
    nnumba.train_perceptron(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([1, -1]),
                            callback=rows.append)
    assert [r["epoch"] for r in rows] == [0, 1] and rows[-1]["nb_changes"] == 0  # converged
    with pytest.raises(errors.DTypeError, match=r"callback\(trainer, row\) takes two"):
        nnumba.train_perceptron(np.ones((2, 2)), np.array([1, -1]), callback=lambda t, r: 0)


def test_help_of_dropout_explains_seed_and_resample():
    doc = inspect.getdoc(Dropout)
    assert "``seed``" in doc and "``resample``" in doc


def test_the_kit_says_how_check_device_gets_the_simulator():
    assert "NUMBA_ENABLE_CUDASIM=1" in " ".join(testing.__doc__.split())


@pytest.mark.parametrize("module, public, internal", [
    ("nnumba.losses", "CrossEntropy", "check_not_fitting"),
    ("nnumba.io", "save", "write_whole"),
    ("nnumba.checkpoint", "stored_training", "read_npz")])
def test_help_of_a_public_module_lists_its_api_only(module, public, internal):
    mod = importlib.import_module(module)
    assert public in mod.__all__ and internal not in mod.__all__
    assert all(hasattr(mod, name) for name in mod.__all__)
