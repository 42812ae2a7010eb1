"""Fuzz round 22 (library API): trainer attributes a callback changes, buffers a
callback sees, SGD's momentum across astype, Dropout's kept masks and its p, and
what Trainer.resume accepts."""
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import losses as L
from nnumba.errors import NnumbaError
from nnumba.layers import Dropout
from nnumba.optim import SGD


def _data(n=20):
    rs = np.random.default_rng(0)
    return rs.standard_normal((n, 4)).astype(np.float32), rs.integers(0, 3, n)


def _linear(seed=1):
    return nnumba.build([{"type": "Linear", "in_features": 4, "out_features": 3}], seed=seed)


def test_forward_in_a_callback_returns_arrays_that_stay_valid():
    """Callbacks see fresh outputs: two model.forward calls in a callback return two
    arrays, and an output kept from one epoch is not overwritten by later epochs
    (fit reuses buffers only while it trains). Reference: predict() at the time."""
    x, y = _data()
    rs = np.random.default_rng(1)
    xv1, xv2 = (rs.standard_normal((5, 4)).astype(np.float32) for _ in range(2))
    model = nnumba.build([{"type": "Linear", "in_features": 4, "out_features": 3},
                          {"type": "Sigmoid"}], seed=0)
    kept = []

    def callback(trainer, row):
        a = trainer.model.forward(xv1)
        b = trainer.model.forward(xv2)
        kept.append((a, b, trainer.model.predict(xv1), trainer.model.predict(xv2)))

    trainer = nnumba.SGDTrainer(model, L.CrossEntropy(), lr=0.1, batch_size=5,
                                precompile=False, callbacks=[callback])
    trainer.fit(x, y, epochs=3)
    for a, b, pa, pb in kept:
        np.testing.assert_allclose(a, pa, rtol=1e-6)
        np.testing.assert_allclose(b, pb, rtol=1e-6)


def test_sgd_keeps_its_momentum_across_astype():
    """model.astype() between two steps keeps SGD's momentum, as torch keeps its
    buffers across model.double(): the next velocity is momentum * v + g."""
    rs = np.random.default_rng(0)
    x = rs.standard_normal((5, 3))
    g = rs.standard_normal((5, 2))
    model = nnumba.build([{"type": "Linear", "in_features": 3, "out_features": 2}], seed=0)
    opt = SGD(model, lr=0.0, momentum=0.9)  # lr 0: the weights stay, only v moves
    model.zero_grad()
    model.forward(x.astype(np.float32))
    model.backward(g.astype(np.float32))
    opt.step()
    v1 = np.array(opt.velocity, np.float64)
    model.astype(np.float64)
    model.zero_grad()
    model.forward(x)
    model.backward(g)
    g2 = np.array(model.flat_grads)
    opt.step()
    assert opt.velocity.dtype == np.float64
    np.testing.assert_allclose(np.array(opt.velocity), 0.9 * v1 + g2, rtol=1e-6)


def test_dropout_p_set_after_construction_is_checked_and_saved():
    """Dropout.p set after construction (a schedule) is what spec() and a saved model
    hold, and a value outside [0, 1] is refused as the constructor refuses it."""
    model = nnumba.build([{"type": "Linear", "in_features": 8, "out_features": 8},
                          {"type": "Dropout", "p": 0.5}], seed=0)
    model.layers[1].p = 0.1
    assert model.spec()[1]["p"] == model.layers[1].p == 0.1
    with pytest.raises(NnumbaError, match="p"):
        model.layers[1].p = 1.5
    assert model.layers[1].p == 0.1


def test_resume_refuses_a_training_of_another_trainer(tmp_path):
    """A GDTrainer's stored training resumed by an SGDTrainer is refused, naming both
    kinds; the same kind with another loss or learning rate goes on, with a warning
    naming what differs (fine-tuning may change them)."""
    rs = np.random.default_rng(0)
    x = rs.standard_normal((12, 3))
    y = np.where(rs.random(12) < .5, -1, 1)
    model = nnumba.build([{"type": "Linear", "in_features": 3, "out_features": 1}],
                         seed=0).astype(np.float64)
    gd = nnumba.GDTrainer(model, L.Hinge(lam=0.1), lr=0.5, momentum=0.9, precompile=False)
    gd.fit(x, y, epochs=2)
    path = nnumba.save(model, tmp_path / "gd.npz", training=gd)
    stored = nnumba.stored_training(path)
    other = nnumba.SGDTrainer(nnumba.load_model(path), L.Logistic(), lr=0.01,
                              precompile=False)
    with pytest.raises(NnumbaError, match="gd.*sgd|sgd.*gd"):
        other.resume(stored)
    assert other.optimizer.velocity is None  # left as it was
    same = nnumba.GDTrainer(nnumba.load_model(path), L.Logistic(), lr=0.01, momentum=0.9,
                            precompile=False)
    with pytest.warns(RuntimeWarning, match="Hinge.*Logistic") as caught:
        same.resume(stored)
    assert "lr" in " ".join(str(w.message) for w in caught)
    assert same.optimizer.velocity is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same settings: not a word
        nnumba.GDTrainer(nnumba.load_model(path), L.Hinge(lam=0.1), lr=0.5, momentum=0.9,
                         precompile=False).resume(stored)


def _dropout_spec():
    return [{"type": "Linear", "in_features": 4, "out_features": 8},
            {"type": "Dropout", "p": 0.5, "resample": False}, {"type": "ReLU"},
            {"type": "Linear", "in_features": 8, "out_features": 3}]


@pytest.mark.parametrize("n", [20, 22])
def test_resume_with_a_kept_dropout_mask_goes_on_as_one_run(tmp_path, n):
    """With Dropout(resample=False) a saved and resumed run takes the steps of one
    uninterrupted run (nnumba.checkpoint's promise), its kept masks included (n=22:
    the short last batch has a mask of its own)."""
    x, y = _data(n)
    kw = dict(lr=0.1, momentum=0.9, batch_size=5, seed=3, precompile=False)
    whole = nnumba.build(_dropout_spec(), seed=1)
    nnumba.SGDTrainer(whole, L.CrossEntropy(), **kw).fit(x, y, epochs=4)
    first = nnumba.build(_dropout_spec(), seed=1)
    trainer = nnumba.SGDTrainer(first, L.CrossEntropy(), **kw)
    trainer.fit(x, y, epochs=2)
    path = nnumba.save(first, tmp_path / "r.npz", training=trainer)
    second = nnumba.load_model(path)
    more = nnumba.SGDTrainer(second, L.CrossEntropy(), **kw)
    more.resume(nnumba.stored_training(path))
    more.fit(x, y, epochs=2)
    np.testing.assert_array_equal(second.flat_params, whole.flat_params)


def test_dropout_without_resampling_keeps_one_mask_per_input_shape():
    """resample=False keeps a mask per input shape until new_mask(): a batch of
    another shape (a short last batch) leaves the first shape's mask as it was."""
    layer = Dropout(p=0.5, seed=0, resample=False)
    first = np.array(layer.forward(np.ones((4, 6), np.float32)))
    layer.forward(np.ones((3, 6), np.float32))
    again = np.array(layer.forward(np.ones((4, 6), np.float32)))
    np.testing.assert_array_equal(again, first)
    assert 0 < np.count_nonzero(first) < first.size
    layer.new_mask()
    assert not np.array_equal(np.array(layer.forward(np.ones((4, 6), np.float32))), first)


def _swap_in_a_callback(name, value):
    """fit with a callback that sets trainer.<name> = value after epoch 1; returns the
    exception fit raised and the updates made."""
    x, y = _data()
    model = _linear()
    before = np.array(model.flat_params)

    def callback(trainer, row):
        if row["epoch"] == 1:
            setattr(trainer, name, value)

    trainer = nnumba.SGDTrainer(model, L.CrossEntropy(), lr=0.1, batch_size=5,
                                precompile=False, callbacks=[callback])
    with pytest.raises(RuntimeError, match=f"{name}.*between") as info:
        trainer.fit(x, y, epochs=3)
    assert trainer.updates == 4 and not np.array_equal(model.flat_params, before)
    return trainer, info


def test_a_model_replaced_by_a_callback_is_refused():
    """trainer.model = other while fit runs is refused: the optimizer would go on
    stepping the old model with stale gradients while the new one never moved."""
    trainer, _ = _swap_in_a_callback("model", _linear(seed=2))
    assert trainer.model is trainer.optimizer.model
    x, y = _data()
    trainer.fit(x, y, epochs=1)  # fit can run again after the refusal


def test_a_loss_replaced_by_a_callback_is_refused_and_left_as_it_was():
    """trainer.loss = other while fit runs is refused, and the loss fit trained with
    gets back its fresh gradients: a gradient kept from one backward stays valid.
    Reference: the closed-form softmax cross-entropy gradient (softmax - onehot) / N."""
    trainer, _ = _swap_in_a_callback("loss", L.CrossEntropy(reduction="sum"))
    first = trainer.loss
    assert first.reuse_buffers is False
    rs = np.random.default_rng(0)
    z1, z2 = rs.standard_normal((4, 3)), rs.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    first.forward(z1, labels)
    g1 = first.backward()
    first.forward(z2, labels)
    first.backward()
    p = np.exp(z1 - z1.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(g1, (p - np.eye(3)[labels]) / 4, rtol=1e-10, atol=1e-12)


def test_batch_size_set_in_a_callback_is_refused_and_lr_still_works():
    """trainer.batch_size = n while fit runs is refused (SGDTrainer batches with the
    size fit started with); trainer.lr set by a callback (a schedule) still works."""
    _swap_in_a_callback("batch_size", 10)
    x, y = _data()
    trainer = nnumba.SGDTrainer(_linear(), L.CrossEntropy(), lr=0.1, batch_size=5,
                                precompile=False,
                                callbacks=[lambda t, row: setattr(t, "lr", t.lr * 0.5)])
    trainer.fit(x, y, epochs=2)
    assert trainer.lr == 0.025
    trainer.batch_size = 10  # between fits: fine
    trainer.fit(x, y, epochs=1)
    assert trainer.updates == 10
