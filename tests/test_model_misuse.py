"""Misuse of a model, refused with a clear error. A layer belongs to one model: a
second model, or a second place in the same model, is refused (a layer keeps one
input and one gradient, and its parameters live in its model's flat buffer, so
sharing trained wrongly or not at all)."""
import copy
import gc

import numpy as np
import pytest

import nnumba
from nnumba.errors import SpecError
from nnumba.layers import Linear, Tanh
from nnumba.losses import MSE
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
