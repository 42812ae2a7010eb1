"""Fuzz round 53 (sequences of calls on the stateful API): a callback's model.astype
during fit is refused where it happens (the next epoch blamed the caller's data), and
fit gives back the reuse_buffers setting it found (it switched the user's off)."""
import numpy as np

import nnumba
from nnumba.errors import NnumbaError
from nnumba.layers import Linear, ReLU
from nnumba.losses import CrossEntropy


def _mlp():
    return nnumba.Sequential(Linear(6, 8), ReLU(), Linear(8, 3), seed=0)


def _data(n=21):
    r = np.random.default_rng(0)
    return r.normal(size=(n, 6)).astype(np.float32), r.integers(0, 3, size=n)


def test_astype_in_fit_callback_is_refused_as_a_mid_fit_change_or_trains_on():
    """A callback that converts the model (model.astype(np.float64)) mid-fit is
    neither refused when it happens, as trainer.model/loss/batch_size are ("cannot
    change while fit runs (a callback set it)"), nor carried through: the next epoch
    fails with a DTypeError that blames the caller's data ("expected input of dtype
    float64, got float32 (convert with .astype(np.float64))"), though fit was given
    float32 data for a float32 model. Either outcome passes: fit trains on in float64
    (the same weights as fit 1 epoch, astype, fit 1 epoch on float64 data), or it
    raises an nnumba error that says a callback changed the model during fit."""
    x, y = _data()
    model = _mlp()
    trainer = nnumba.SGDTrainer(model, CrossEntropy(), lr=0.1, batch_size=7, seed=0)
    trainer.callbacks = [lambda t, row: t.model.astype(np.float64) if row["epoch"] == 1 else None]
    try:
        trainer.fit(x, y, epochs=2)
    except NnumbaError as exc:
        text = str(exc)
        assert "fit" in text and ("callback" in text or "while" in text), text
        return
    ref = _mlp()
    ref_trainer = nnumba.SGDTrainer(ref, CrossEntropy(), lr=0.1, batch_size=7, seed=0)
    ref_trainer.fit(x, y, epochs=1)
    ref.astype(np.float64)
    ref_trainer.fit(x.astype(np.float64), y, epochs=1)
    assert model.dtype == np.float64
    for (name, p), (_, q) in zip(model.params(), ref.params()):
        np.testing.assert_allclose(p.value, q.value, rtol=1e-6, atol=1e-6, err_msg=name)


def test_fit_keeps_a_users_reuse_buffers_setting():
    """model.reuse_buffers(True) ("Let layers reuse their output arrays between calls")
    is switched off for good by any trainer.fit: fit turns reuse on for its batches,
    then off in its finally, whatever the model had before. Expected: fit restores the
    setting it found (as predict restores the layers' modes)."""
    x, y = _data()
    model = _mlp()
    model.reuse_buffers(True)
    a = model.forward(x[:3])
    b = model.forward(x[3:6])
    assert np.shares_memory(a, b)  # reuse on, as the user asked
    nnumba.SGDTrainer(model, CrossEntropy(), lr=0.1, batch_size=7, seed=0).fit(x, y, epochs=1)
    a = model.forward(x[:3])
    b = model.forward(x[3:6])
    assert np.shares_memory(a, b), "fit switched off the model's reuse_buffers(True)"
