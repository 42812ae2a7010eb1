"""Fuzz round 59 (the surfaces changed this sitting): the kit's check_read_only passes a
correct float32 layer (it drew the upstream gradient in float64, which the layer
refused: 'expected dl_dy of dtype float32, got float64').  Reference: the same layer
in float64 passes, and the kit still catches a layer that writes into its input."""
import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing


@pytest.mark.parametrize("name, kwargs, shape", [
    ("Linear", {"in_features": 3, "out_features": 2}, (4, 3)), ("ReLU", {}, (4, 3)),
    ("Conv2d", {"in_channels": 1, "out_channels": 2, "kernel_size": 3}, (2, 1, 5, 5))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_read_only_passes_a_correct_layer_of_either_dtype(name, kwargs, shape, dtype):
    layer = nnumba.get_layer(name)(**kwargs).astype(dtype)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    testing.check_read_only(layer, x, np.random.default_rng(1), alone=True)


class WritesIntoItsInput59(Layer):
    def _forward(self, x):
        x[...] = 0
        return self._buffer("y", x.shape)

    def _backward(self, dl_dy):
        return dl_dy


def test_check_read_only_still_catches_a_float32_layer_writing_into_its_input():
    with pytest.raises(testing.ConformanceError, match="_forward wrote into its input x"):
        testing.check_read_only(WritesIntoItsInput59(), np.ones((2, 3), np.float32),
                                np.random.default_rng(0))


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((40, 4)).astype(np.float32), rng.integers(0, 3, 40)


@pytest.mark.parametrize("trainer", ["SGDTrainer", "GDTrainer"])
@pytest.mark.parametrize("epochs", [1, 2])
def test_a_callback_setting_an_optimizer_is_refused_and_the_trainer_goes_on(trainer, epochs):
    """trainer.optimizer = SGD(another model) in a callback was taken: fit returned
    normally in its last epoch, else refused an epoch later, and every later fit was a
    SpecError ('build a new trainer').  Now refused at once, as model, loss and
    batch_size are; the trainer then trains its own model."""
    x, y = _data()
    model = nnumba.Sequential(nnumba.get_layer("Linear")(4, 3), seed=0)
    other = nnumba.Sequential(nnumba.get_layer("Linear")(4, 3), seed=0)
    seen = []

    def callback(t, row):
        try:
            t.optimizer = nnumba.SGD(other, lr=0.1)
            seen.append("taken")
        except nnumba.FitRunningError:
            seen.append("refused")

    t = getattr(nnumba, trainer)(model, nnumba.get_loss("CrossEntropy")(), lr=0.1,
                                 batch_size=10, callbacks=[callback], precompile=False)
    t.fit(x, y, epochs=epochs)
    assert seen == ["refused"] * epochs and t.optimizer.model is model
    t.callbacks = []
    before = model.flat_params.copy()
    t.fit(x, y, epochs=1)
    assert not np.array_equal(before, model.flat_params) and not other.flat_grads.any()


@pytest.mark.parametrize("key", [["epoch"], {"a": 1}, 3])
def test_history_last_of_a_key_no_row_can_hold_is_a_key_error(key):
    """An unhashable key was a bare 'TypeError: unhashable type' (the docstring says
    KeyError for a key no row holds)."""
    x, y = _data()
    t = nnumba.SGDTrainer(nnumba.Sequential(nnumba.get_layer("Linear")(4, 3), seed=0),
                          nnumba.get_loss("CrossEntropy")(), precompile=False)
    history = t.fit(x, y, epochs=1)
    with pytest.raises(KeyError, match="History rows hold"):
        history.last(key)
    assert history.last("epoch") == 1
