"""SGDTrainer(drop_last=True): a short last batch is left out, as PyTorch's DataLoader
does, so that a layer whose training forward refuses one sample (a batch norm) trains
on any number of samples (plugin trial 41: 21 samples at batch 20 could not be fitted)."""
import warnings

import numpy as np
import pytest

import nnumba
from nnumba.errors import ShapeError, SpecError
from nnumba.layers import Layer, Linear, ReLU
from nnumba.losses import CrossEntropy


class BatchCenter(Layer):
    """x - its batch mean in training (a batch norm's centring): refuses one sample."""

    examples = [({"features": 3}, (4, 3))]
    devices = ("cpu",)

    def __init__(self, features: int):
        super().__init__()
        self.features = features

    def input_shape(self):
        return (self.features,)

    def output_shape(self, input_shape):
        return (self.features,)

    def _forward(self, x):
        if self.training and x.shape[0] < 2:
            raise ShapeError(f"{self.label}: a batch of 1 sample has no spread")
        y = self._buffer("y", x.shape)
        y[...] = x - x.mean(0) if self.training else x
        return y

    def _backward(self, dl_dy):
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy - dl_dy.mean(0) if self.training else dl_dy
        return dx


def model():
    return nnumba.Sequential(Linear(4, 6), BatchCenter(6), ReLU(), Linear(6, 2), seed=0)


def data(n=21):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def test_a_short_last_batch_of_one_sample_is_left_out():
    x, y = data(21)
    with pytest.raises(ShapeError, match="1 sample"):  # batches of 20 and 1
        nnumba.SGDTrainer(model(), CrossEntropy(), batch_size=20, seed=0).fit(x, y)
    dropped, first = model(), model()
    history = nnumba.SGDTrainer(dropped, CrossEntropy(), batch_size=20, seed=0, shuffle=False,
                                drop_last=True).fit(x, y, epochs=3)
    reference = nnumba.SGDTrainer(first, CrossEntropy(), batch_size=20, seed=0,
                                  shuffle=False).fit(x[:20], y[:20], epochs=3)
    for (_, p), (_, q) in zip(dropped.params(), first.params()):  # the same 3 updates
        np.testing.assert_array_equal(p.value, q.value)
    # the epoch's loss is the mean over the samples it visited
    assert history.last("train_loss") == reference.last("train_loss")


def test_shuffled_epochs_leave_out_a_different_sample_and_count_full_batches():
    x, y = data(21)
    trainer = nnumba.SGDTrainer(model(), CrossEntropy(), batch_size=5, seed=0, drop_last=True)
    assert trainer._num_batches(21) == 4  # the progress bar's count
    trainer.fit(x, y, epochs=2)
    assert trainer.updates == 8


def test_fewer_samples_than_a_batch_is_refused_before_any_update():
    x, y = data(7)
    m = model()
    before = [p.value.copy() for _, p in m.params()]
    trainer = nnumba.SGDTrainer(m, CrossEntropy(), batch_size=8, drop_last=True)
    with pytest.raises(SpecError, match="drop_last leaves out every batch"):
        trainer.fit(x, y)
    assert trainer.updates == 0
    assert all(np.array_equal(b, p.value) for b, (_, p) in zip(before, m.params()))


def test_drop_last_is_a_flag_stored_with_the_training_and_warned_of(tmp_path):
    with pytest.raises(SpecError, match="drop_last"):
        nnumba.SGDTrainer(model(), CrossEntropy(), drop_last="yes")
    x, y = data(21)
    plain = nnumba.Sequential(Linear(4, 6), ReLU(), Linear(6, 2), seed=0)
    trainer = nnumba.SGDTrainer(plain, CrossEntropy(), batch_size=5, drop_last=True)
    trainer.fit(x, y)
    path = nnumba.save(plain, tmp_path / "m.npz", training=trainer)
    stored = nnumba.stored_training(path)
    assert stored["drop_last"] is True
    again = nnumba.SGDTrainer(nnumba.load_model(path), CrossEntropy(), batch_size=5)
    with pytest.warns(RuntimeWarning, match="drop_last True -> False"):
        again.resume(stored)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nnumba.SGDTrainer(nnumba.load_model(path), CrossEntropy(), batch_size=5,
                          drop_last=True).resume(stored)
