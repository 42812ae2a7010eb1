"""Misuse of a model, refused with a clear error. A layer belongs to one model: a
second model, or a second place in the same model, is refused (a layer keeps one
input and one gradient, and its parameters live in its model's flat buffer, so
sharing trained wrongly or not at all)."""
import copy
import gc
import pickle

import numpy as np
import pytest

import nnumba
from nnumba.errors import DTypeError, NoGradientError, ShapeError, SpecError, TooLargeError
from nnumba.layers import Conv2d, Flatten, Linear, Tanh
from nnumba.losses import MSE
from nnumba.optim import SGD
from nnumba.summary import summarize
from nnumba.train import SGDTrainer


def _trains(model) -> bool:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float32)
    history = SGDTrainer(model, MSE(), lr=0.05, batch_size=16, seed=0).fit(x, y, epochs=3)
    losses = [row["train_loss"] for row in history.epochs]
    return losses[-1] < 0.5 * losses[0]


def test_a_layer_of_a_live_model_is_refused_by_another():
    lin = Linear(3, 1)
    first = nnumba.Sequential(lin, seed=0)
    with pytest.raises(SpecError, match=r"item #0 \(Linear\) belongs to another model"):
        nnumba.Sequential(lin, seed=1)
    assert _trains(first)  # the refusal left the first model whole


def test_the_same_layer_twice_in_one_model_is_refused():
    lin = Linear(3, 3)
    with pytest.raises(SpecError, match="items #0 and #2 are the same Linear object"):
        nnumba.Sequential(lin, Tanh(), lin)


def test_a_layer_is_free_again_once_its_model_is_gone():
    lin = Linear(3, 1)
    nnumba.Sequential(lin, seed=0)
    gc.collect()
    assert _trains(nnumba.Sequential(lin, seed=0))


def test_copies_belong_to_no_model_or_to_their_own():
    model = nnumba.Sequential(Linear(3, 4), Tanh(), Linear(4, 1), seed=0)
    twin = model.copy()
    assert all(layer.container() is twin for layer in twin.layers)
    assert _trains(nnumba.Sequential(*copy.deepcopy(model.layers)))
    restored = copy.deepcopy(model)  # as scikit-learn's clone does
    assert all(layer.container() is restored for layer in restored.layers)
    with pytest.raises(SpecError, match="belongs to another model"):
        nnumba.Sequential(restored.layers[0])
    assert _trains(model) and _trains(twin)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_a_seed_that_is_not_a_natural_number_is_refused(seed):
    with pytest.raises(SpecError, match="Sequential: seed must be an integer >= 0"):
        nnumba.Sequential(Linear(3, 1), seed=seed)


@pytest.mark.parametrize("batch_size", [0, 1.5, None, "10"])
def test_predict_refuses_a_batch_size_that_is_not_a_positive_integer(batch_size):
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    with pytest.raises(SpecError, match="predict: batch_size must be an integer >= 1"):
        model.predict(np.zeros((4, 3), np.float32), batch_size=batch_size)


@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))])
def test_a_deep_copied_or_unpickled_model_trains_as_the_original(duplicate):
    """Its parameters come back as arrays of their own: they are views of its flat
    buffers again, which the optimizer updates (it used to train nothing)."""
    model = nnumba.Sequential(Linear(3, 4), Tanh(), Linear(4, 1), seed=0)
    twin = duplicate(model)
    assert all(np.shares_memory(p.value, twin.flat_params) for _, p in twin.params())
    assert _trains(twin)
    _trains(model)
    for (_, a), (_, b) in zip(model.params(), twin.params()):
        np.testing.assert_array_equal(a.value, b.value)  # the same steps, the same weights


def test_backward_after_a_failed_forward_is_refused():
    """A forward that fails part-way leaves the first steps holding the new batch:
    their backward would pair it with gradients of the old one."""
    model = nnumba.Sequential(Conv2d(1, 2, 3), Flatten(), Linear(32, 3), seed=0)
    model.forward(np.ones((2, 1, 6, 6), np.float32))
    with pytest.raises(ShapeError):
        model.forward(np.ones((5, 1, 9, 9), np.float32))
    with pytest.raises(NoGradientError, match="last forward"):
        model.backward(np.ones((2, 3), np.float32))
    with pytest.raises(NoGradientError, match="before forward"):
        Linear(3, 2).backward(np.ones((1, 2), np.float32))


def test_an_optimizer_of_another_model_is_refused():
    a, b = (nnumba.Sequential(Linear(3, 1), seed=0) for _ in range(2))
    with pytest.raises(SpecError, match="optimizer was built for another model"):
        SGDTrainer(b, MSE(), optimizer=SGD(a, lr=0.1))


@pytest.mark.parametrize("dtype", [None, "x", "int32", ">f4", np.float16])
def test_astype_takes_float32_or_float64_only(dtype):
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    for target in (model, model.layers[0]):
        with pytest.raises(DTypeError, match="dtype must be float32 or float64"):
            target.astype(dtype)
    assert model.dtype == np.float32


def test_numpy_scalars_in_a_layers_config_are_saved_as_json(tmp_path):
    model = nnumba.Sequential(Linear(np.int64(3), 2, bias=np.bool_(True)), seed=0)
    nnumba.save(model, tmp_path / "m.npz")
    assert nnumba.load_model(tmp_path / "m.npz").spec() == model.spec()


@pytest.mark.parametrize("value", ["a", 1.5, -1, True])
def test_nnumba_seed_takes_a_natural_number(value):
    with pytest.raises(SpecError, match="nnumba.seed: seed must be an integer >= 0"):
        nnumba.seed(value)


@pytest.mark.parametrize("name,options,match", [
    ("mlp", {"bogus": 1}, "model 'mlp' has no option bogus; its options: inputs"),
    ("alexnet", {"classes": 2}, "model 'alexnet' has no option classes"),
    ("mlp", {"hidden": "x"}, "hidden must be"),
])
def test_a_named_model_refuses_options_it_does_not_take(name, options, match):
    with pytest.raises(SpecError, match=match):
        nnumba.build(name, **options)
    with pytest.raises(SpecError, match=match):
        summarize(name, **options)


@pytest.mark.parametrize("stride,padding", [(2**62, 2**62), (10**6, 10**6)])
def test_a_convolution_whose_scratch_arrays_cannot_fit_is_refused(stride, padding):
    with pytest.raises(TooLargeError, match="scratch arrays"):
        Conv2d(1, 1, 3, stride, padding).forward(np.ones((1, 1, 5, 5), np.float32))


@pytest.mark.parametrize("x", [None, np.array(1.0), {}, [[1.0, 2.0, 3.0]]])
def test_predict_takes_a_numpy_array_of_samples(x):
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    with pytest.raises(DTypeError, match="predict: expected a numpy array of samples"):
        model.predict(x)


def test_train_mode_is_true_or_false():
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    with pytest.raises(SpecError, match="train's mode must be true or false"):
        model.train("no")  # a truthy string would have kept Dropout on
    assert model.training is True and model.eval().training is False


def test_a_big_endian_input_is_named_as_such():
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    with pytest.raises(DTypeError, match="float32 of byte order >f4"):
        model.forward(np.ones((2, 3), ">f4"))


def test_save_and_load_name_what_is_not_a_model_or_a_path(tmp_path):
    from nnumba.errors import SaveError, WeightsError
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    with pytest.raises(SaveError, match="must be a path, got 5"):
        nnumba.save(model, 5)
    with pytest.raises(TypeError, match="save: expected a model"):
        nnumba.save(None, tmp_path / "m.npz")
    with pytest.raises(WeightsError, match="a weights file is a path, got None"):
        nnumba.load_model(None)
    nnumba.save(model, tmp_path / "m.npz")
    with pytest.raises(TypeError, match="load_weights: expected a model"):
        nnumba.load_weights(None, tmp_path / "m.npz")
