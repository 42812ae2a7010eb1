"""Regression tests for the causes found by the third fuzzing pass (float64 models,
the 1-D layers, the trainers' options, the CUDA simulator, the CLI's other commands,
the scikit-learn estimators, MPI): each bad input meets one of nnumba's named errors
with a clear message (or the right answer)."""
import numpy as np
import pytest

import nnumba
from nnumba.errors import DTypeError, LabelError
from nnumba.layers import Linear
from nnumba.losses import CrossEntropy


def _small():
    rng = np.random.default_rng(0)
    return (rng.random((5, 4)).astype(np.float32), np.array([0, 1, 2, 1, 0]),
            nnumba.Sequential(Linear(4, 3), seed=0))


# ---- trainers ----------------------------------------------------------------------------

@pytest.mark.parametrize("trainer", [nnumba.SGDTrainer, nnumba.GDTrainer])
def test_masked_training_and_test_sets_are_refused(trainer):
    # the batches were gathered from the data under the mask: trained on hidden values
    x, y, model = _small()
    masked_x = np.ma.masked_array(x, mask=x > 0.5)
    with pytest.raises(DTypeError, match="training set: inputs is a masked array"):
        trainer(model, CrossEntropy()).fit(masked_x, y)
    with pytest.raises(DTypeError, match="test set: inputs is a masked array"):
        trainer(model, CrossEntropy()).fit(x, y, x_test=masked_x, y_test=y)
    # without masked values, the data is used
    trainer(model, CrossEntropy()).fit(np.ma.masked_array(x), y)


def test_masked_perceptron_sets_are_refused():
    x = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    y = np.array([1, 1, -1, -1])
    with pytest.raises(DTypeError, match="training set: inputs is a masked array"):
        nnumba.train_perceptron(np.ma.masked_array(x, mask=x == 0), y)
    with pytest.raises(DTypeError, match="labels is a masked array"):
        nnumba.train_perceptron(x, np.ma.masked_array([1, 1, -1, 5], mask=[0, 0, 0, 1]))


def test_perceptron_labels_that_are_not_numbers_are_a_label_error():
    x = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    with pytest.raises(LabelError, match="as numbers, got dtype object"):  # was TypeError
        nnumba.train_perceptron(x, np.array([1, None, -1, -1], dtype=object))


@pytest.mark.parametrize("trainer", [nnumba.SGDTrainer, nnumba.GDTrainer])
def test_a_callback_of_the_wrong_arity_is_refused_before_training(trainer):
    x, y, model = _small()
    with pytest.raises(DTypeError, match=r"callbacks must be functions \(trainer, row\)"):
        trainer(model, CrossEntropy(), callbacks=[lambda row: None])
    with pytest.raises(DTypeError, match="callback must be a function of one argument, the epoch's row"):
        nnumba.train_perceptron(x.astype(float), np.array([1, -1, 1, 1, -1]),
                                callback=lambda trainer, row: None)
    trainer(model, CrossEntropy(), callbacks=[lambda *args: None, print]).fit(x, y)


def test_big_endian_training_inputs_are_named_as_such():
    x, y, model = _small()
    with pytest.raises(DTypeError, match="float32 of byte order >f4 but the model is float32"):
        nnumba.SGDTrainer(model, CrossEntropy()).fit(x.astype(">f4"), y)


# ---- scikit-learn estimators -----------------------------------------------------------

def _digits():
    rng = np.random.default_rng(0)
    return rng.random((20, 4)), np.arange(20) % 3


def test_partial_fit_refuses_classes_other_than_the_first_calls():
    pytest.importorskip("sklearn")
    from nnumba.sklearn import NNClassifier
    x, y = _digits()
    clf = NNClassifier(model_options={"hidden": [5]}, random_state=0)
    clf.partial_fit(x, y, classes=[0, 1, 2])
    with pytest.raises(LabelError, match=r"classes=\[0, 1, 2, 3\] is not the same as on the "
                                         r"first call, \[0, 1, 2\]"):  # was ignored
        clf.partial_fit(x, y, classes=[0, 1, 2, 3])
    clf.partial_fit(x, y, classes=[2, 1, 0])  # the same classes, in any order


def test_set_params_between_partial_fit_calls_takes_effect():
    pytest.importorskip("sklearn")
    from nnumba.sklearn import NNRegressor
    x, y = _digits()
    reg = NNRegressor(model_options={"hidden": [5]}, random_state=0).partial_fit(x, y)
    reg.set_params(lr=0.0, momentum=0.0)  # the old trainer kept lr 0.1 and its momentum
    before = reg.model_.flat_params.copy()
    reg.partial_fit(x, y)
    np.testing.assert_array_equal(reg.model_.flat_params, before)
    reg.set_params(batch_size=3)
    assert reg.partial_fit(x, y)._trainer.batch_size == 3


def test_set_params_dtype_after_fit_applies_to_the_next_fit_not_to_predict():
    pytest.importorskip("sklearn")
    from nnumba.sklearn import NNClassifier
    x, y = _digits()
    clf = NNClassifier(model_options={"hidden": [5]}, epochs=2, random_state=0).fit(x, y)
    proba = clf.predict_proba(x)
    clf.set_params(dtype="float64")  # predict gave DTypeError: float64 rows, float32 model
    np.testing.assert_array_equal(clf.predict_proba(x), proba)
    clf.set_params(warm_start=True).fit(x, y)  # fit gave DTypeError too
    assert clf.model_.dtype == np.float64 and clf.predict_proba(x).dtype == np.float64


# ---- the CUDA device path, under the simulator (in a subprocess) -----------------------

_CUDASIM_CHECKS = r"""
import numpy as np
import nnumba
from nnumba.device import DeviceError, to_device
from nnumba.errors import DTypeError, NonFiniteError
from nnumba.layers import Linear
from nnumba.losses import MSE

def raises(kind, phrase, call):
    try:
        call()
    except kind as exc:
        assert phrase in str(exc), str(exc)
    else:
        raise AssertionError(f"no {kind.__name__}")

y_hat = to_device(np.zeros((2, 3), np.float32))
# NaN device targets: MSE returned NaN as the loss
raises(NonFiniteError, "targets hold 6 NaN", lambda: MSE().forward(
    y_hat, to_device(np.full((2, 3), np.nan, np.float32))))
# None, strings: the simulator copied them over as object arrays
raises(DeviceError, "holds numbers, got dtype object", lambda: to_device(None, "cuda"))
raises(DeviceError, "got dtype <U3", lambda: to_device("abc", "cuda"))
raises(DeviceError, "cannot make an array of list", lambda: to_device([1, [2, 3]], "cuda"))
model = nnumba.Sequential(Linear(3, 2), seed=0)
raises(DeviceError, "belongs to a model: move the whole model",
       lambda: model.layers[0].to("cuda"))  # its parameters left the flat buffer
model.to("cuda")
raises(DTypeError, "got a FakeCUDAArray", lambda: model.predict(y_hat))
# strided device arrays given to a loss: the message named neither the loss nor the array
from nnumba.errors import ShapeError
from nnumba.losses import CrossEntropy
strided = to_device(np.zeros((2, 6), np.float32))[:, ::2]
raises(ShapeError, "CrossEntropy loss: predictions: expected a C-contiguous",
       lambda: CrossEntropy().forward(strided, np.array([0, 1])))
raises(ShapeError, "CrossEntropy loss: targets: expected a C-contiguous",
       lambda: CrossEntropy().forward(y_hat, to_device(np.array([0, 0, 1, 1]))[::2]))
# a model on cuda pickled with RecursionError (device arrays); one moved back to the cpu
# too, through the inputs its layers kept for backward on the device
import copy
import pickle
x = np.random.default_rng(0).random((2, 3)).astype(np.float32)
want = model.predict(x)
twin = pickle.loads(pickle.dumps(model))
assert twin.device.name == "cuda" and np.array_equal(twin.predict(x), want)
assert model.device.name == "cuda" and np.array_equal(model.predict(x), want)
assert np.array_equal(copy.deepcopy(model).predict(x), want)
model.to("cpu")
assert np.allclose(pickle.loads(pickle.dumps(model)).predict(x), want, atol=1e-6)  # cpu kernels
print("ok")
"""


def test_cuda_simulator_device_targets_and_to_device_are_checked():
    import importlib.util
    import os
    import subprocess
    import sys
    from pathlib import Path
    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("numba-cuda is not installed")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    run = subprocess.run([sys.executable, "-c", _CUDASIM_CHECKS], env=env, text=True,
                         capture_output=True, timeout=300,
                         cwd=Path(__file__).parent.parent)
    assert run.returncode == 0 and "ok" in run.stdout, run.stderr[-3000:]


def test_accuracy_takes_integer_sign_labels_of_shape_n_1_as_float_ones():
    from nnumba.losses import Hinge
    from nnumba.train.metrics import accuracy
    y_hat = np.array([[1.0], [-1.0], [2.0]])
    assert accuracy(y_hat, np.array([[1.0], [-1.0], [-1.0]])) == pytest.approx(2 / 3)
    assert accuracy(y_hat, np.array([[1], [-1], [-1]])) == pytest.approx(2 / 3)  # was None
    x = np.array([[1.0], [-1.0]], np.float32)
    history = nnumba.SGDTrainer(nnumba.Sequential(Linear(1, 1), seed=0), Hinge()).fit(
        x, np.array([[1], [-1]]), x_test=x, y_test=np.array([[1], [-1]]))
    assert history.last("test_accuracy") is not None


# ---- MPI training's library API, in one process ------------------------------------------

def test_distributed_trainers_check_their_arguments_before_any_collective():
    pytest.importorskip("mpi4py")
    from nnumba.distributed import DistributedSGDTrainer, setup, train_perceptron_distributed
    from nnumba.errors import SpecError
    x, y, model = _small()
    with pytest.raises(DTypeError, match="comm must be an mpi4py communicator"):
        DistributedSGDTrainer(model, CrossEntropy(), comm="world")  # AttributeError
    with pytest.raises(DTypeError, match="comm must be an mpi4py communicator"):
        train_perceptron_distributed(x.astype(float), np.array([1, -1, 1, 1, -1]), comm=3)
    with pytest.raises(SpecError, match="seed must be below 2\\*\\*63"):  # OverflowError
        DistributedSGDTrainer(model, CrossEntropy(), seed=2**70)
    with pytest.raises(DTypeError, match="must be numpy arrays"):  # len(None): TypeError
        DistributedSGDTrainer(model, CrossEntropy()).fit(None, y)
    with pytest.raises(SpecError, match="threads must be an integer >= 1, got 'a'"):
        setup(threads="a")
    comm = setup()
    assert DistributedSGDTrainer(model, CrossEntropy(), comm=comm.comm).comm.size == 1


# ---- float64: converting one layer of a model ------------------------------------------------

def test_a_layer_of_a_model_is_converted_with_the_model_not_alone():
    from nnumba.losses import MSE
    x = np.ones((2, 3), np.float32)
    model = nnumba.Sequential(Linear(3, 2), seed=0)
    # its parameters left the flat buffer: training then changed nothing, silently
    with pytest.raises(DTypeError, match=r"Linear #0 belongs to a model: convert the whole "
                                         r"model with model.astype\(np.float64\)"):
        model.layers[0].astype(np.float64)
    assert model.layers[0].astype(np.float32) is model.layers[0]  # its own dtype: a no-op
    before = model.layers[0].weight.value.copy()
    nnumba.SGDTrainer(model, MSE(), lr=1.0).fit(x, np.zeros((2, 2), np.float32))
    assert np.abs(model.layers[0].weight.value - before).max() > 0
    assert np.shares_memory(model.layers[0].weight.value, model.flat_params)
    model.astype(np.float64)  # the model converts its layers
    assert model.layers[0].weight.value.dtype == np.float64
    assert np.shares_memory(model.layers[0].weight.value, model.flat_params)
    assert Linear(3, 2).astype(np.float64).dtype == np.float64  # a layer of no model


def test_an_unknown_name_of_any_length_gives_a_short_message():
    from nnumba.errors import RegistryError, SpecError
    for call in (lambda: nnumba.build("y" * 100_000), lambda: nnumba.get_loss("z" * 100_000),
                 lambda: nnumba.build([{"type": "x" * 100_000}])):
        with pytest.raises((RegistryError, SpecError), match=r"\.\.\. \(100,000 characters\)") \
                as info:
            call()  # the message repeated all 100,000 characters
        assert len(str(info.value)) < 1000
    with pytest.raises(RegistryError, match="did you mean 'lenet'"):
        nnumba.build("Lenet")


def test_history_last_of_a_test_metric_without_a_test_set_is_none():
    x, y, model = _small()
    history = nnumba.SGDTrainer(model, CrossEntropy()).fit(x, y)
    assert history.last("test_accuracy") is None  # a bare KeyError: 'test_accuracy'
    assert history.last("train_loss") > 0
    with pytest.raises(KeyError, match="History rows hold epoch, train_loss, seconds"):
        history.last("accuracy")


def test_perceptron_to_model_refuses_weights_beyond_its_dtype():
    from nnumba.errors import NonFiniteError
    x = np.array([[1e100, 0], [0, 1e100], [-1e100, 0], [0, -1e100]])
    result = nnumba.train_perceptron(x, np.array([1, 1, -1, -1]))
    with pytest.raises(NonFiniteError, match="weights as large as 1e\\+100 do not fit float32"):
        result.to_model()  # the weights became inf, and inf - inf = NaN predicted -1
    model = result.to_model(dtype="float64")
    probe = np.array([[1.0, -2.0], [-3.0, 1.0]])
    np.testing.assert_array_equal(model.predict(probe).ravel(), result.predict(probe))
    small = nnumba.train_perceptron(x / 1e100, np.array([1, 1, -1, -1]))
    np.testing.assert_array_equal(small.to_model().predict(probe.astype(np.float32)).ravel(),
                                  small.predict(probe))


def test_converting_weights_beyond_float32_to_float32_is_refused():
    from nnumba.errors import NonFiniteError
    from nnumba.layers import ReLU
    model = nnumba.Sequential(Linear(2, 2), seed=0).astype(np.float64)
    model.flat_params[:] = 1e100
    with pytest.raises(NonFiniteError, match="parameter 0.weight holds values as large as "
                                             "1e\\+100, beyond float32's range"):
        model.astype(np.float32)  # the weights became inf, silently
    assert model.dtype == np.float64 and model.layers[0].weight.value.dtype == np.float64
    assert np.shares_memory(model.layers[0].weight.value, model.flat_params)
    layer = Linear(2, 2).astype(np.float64)
    layer.weight.value[...] = 1e300
    with pytest.raises(NonFiniteError, match="beyond float32's range"):
        layer.astype(np.float32)
    with pytest.raises(NonFiniteError, match="beyond float32's range"):
        nnumba.Sequential(ReLU(), layer)  # a model takes its first layer's dtype


# ---- experiments, from Python ------------------------------------------------------------------

def test_run_experiment_checks_its_name_and_arguments():
    from nnumba.errors import RegistryError, SpecError
    from nnumba.experiments import run_experiment
    with pytest.raises(RegistryError, match="unknown experiment None \\(a NoneType, not a"):
        run_experiment(None)  # len(None): TypeError
    with pytest.raises(SpecError, match="fast must be true or false, got 'yes'"):
        run_experiment("xor", fast="yes")
    with pytest.raises(SpecError, match="out_dir: expected a path"):
        run_experiment("xor", fast=True, out_dir=3)  # TypeError at the figure
    with pytest.raises(SpecError, match="a path cannot hold a NUL byte"):
        run_experiment("xor", fast=True, out_dir="figures\0")
    with pytest.raises(SpecError, match="takes no option lecture"):  # a bare ValueError
        run_experiment("xor", fast=True, lecture=True)
