"""Fuzz round 26: Ctrl-C in an estimator's fit threw away every epoch trained; a callback
replacing trainer.optimizer silently stopped training; a failed continued fit after
set_params(dtype=...) left the model converted; summary overflowed on sizes past a
float's range. References: an uninterrupted 2-epoch fit with the same seeds, the
weights after epoch 1, the model's dtype and values before, math.prod.
"""
import math
import signal
import warnings

import numpy as np
import pytest

import nnumba
from nnumba.errors import NnumbaError
from nnumba.losses import CrossEntropy
from nnumba.train import SGDTrainer

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_iris  # noqa: E402

from nnumba.sklearn import NNClassifier, NNRegressor  # noqa: E402


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    return (x - x.mean(0)) / x.std(0), y


# ---- 1. Ctrl-C in an estimator's fit throws away every epoch trained -------------------

@pytest.mark.parametrize("make", [
    lambda: NNClassifier(model_options={"hidden": [8]}, epochs=5, random_state=0),
    lambda: NNRegressor(model_options={"hidden": [8]}, epochs=5, random_state=0),
], ids=["classifier", "regressor"])
def test_ctrl_c_in_fit_keeps_the_epochs_trained(iris, make, monkeypatch):
    """A real SIGINT at the start of epoch 3 (before any of its updates). Trainer's own
    contract (train/base.py:412: "Ctrl-C in fit leaves the model with the weights of
    the last [update] and history with the epochs completed") and scikit-learn's
    MLPClassifier ("Training interrupted by user.": fitted, n_iter_ epochs kept) both
    keep the work done. It was so: sklearn_restore.as_before_on_error catches
    BaseException (sklearn_restore.py:18) and restores the estimator to before the
    fit: unfitted on a first fit, every trained epoch lost. Reference: the same
    estimator fitted for 2 epochs without interruption (same seeds, so the same
    weights). Propagating the KeyboardInterrupt is accepted, as long as the work is
    kept."""
    x, y = iris
    y = y if isinstance(make(), NNClassifier) else y.astype(float)
    reference = make().set_params(epochs=2).fit(x, y)

    original = SGDTrainer._epoch

    def interrupted(self, n, bar, epoch):
        if epoch == 3:
            signal.raise_signal(signal.SIGINT)  # Python's default handler: KeyboardInterrupt
        return original(self, n, bar, epoch)

    monkeypatch.setattr(SGDTrainer, "_epoch", interrupted)
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(x, y)
        except KeyboardInterrupt:
            pass
    assert hasattr(est, "model_"), "the 2 epochs trained before Ctrl-C were thrown away"
    assert est.n_iter_ == 2 and len(est.history_) == 2
    np.testing.assert_array_equal(est.model_.flat_params, reference.model_.flat_params)


# ---- 2. A callback that replaces trainer.optimizer: fit silently trains nothing ---------

def test_optimizer_replaced_by_a_callback_is_refused_or_trains_the_model():
    """trainer.model, loss and batch_size set by a callback are refused while fit runs
    (fuzz 22 #2), and fit refuses an optimizer of another model at its start
    (train/base.py:186); but trainer.optimizer (a plain attribute, base.py:89) set by
    a callback is met by neither. The remaining epochs then step the other model with
    zero gradients and never step trainer.model: the history shows the same
    train_loss every epoch and the weights do not move, without a word. Should: refuse
    the assignment while fitting (as model/loss/batch_size), or check the optimizer's
    model every epoch. Reference: the weights after epoch 1 (they must move on, or
    the fit must be refused)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    spec = [{"type": "Linear", "in_features": 4, "out_features": 5}, {"type": "ReLU"},
            {"type": "Linear", "in_features": 5, "out_features": 3}]
    model, other = nnumba.build(spec, seed=0), nnumba.build(spec, seed=1)
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.1, momentum=0.9, batch_size=7, seed=1)
    after_first = []

    def swap(t, row):
        if row["epoch"] == 1:
            after_first.append(t.model.flat_params.copy())
            t.optimizer = nnumba.optim.SGD(other, lr=0.1)

    trainer.callbacks = [swap]
    try:
        history = trainer.fit(x, y, epochs=4)
    except (RuntimeError, NnumbaError):
        return  # refused: fine
    losses = [row["train_loss"] for row in history.epochs]
    assert not np.array_equal(model.flat_params, after_first[0]), (
        f"trainer.model was not trained after the swap; train_loss {losses}")


# ---- 3. A failed continued fit after set_params(dtype=...) leaves the model converted ---

@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_failed_continued_fit_after_a_dtype_change_leaves_the_model_as_it_was(iris, how):
    """README: "A failed fit leaves an estimator as it was" (fuzz 21 #2 extended it to
    continued fits). sklearn.py:189-190 converts model_ to the new dtype before the
    trainer is built (and its lr checked, sklearn.py:197) and before any training;
    sklearn_restore.py restores the values into the converted arrays but not the
    dtype. So a float64 model whose continued fit fails is left float32, its weights
    rounded (max change ~3e-8), and predict_proba returns float32 from then on.
    Reference: the model before the failed call, bit for bit."""
    x, y = iris
    est = NNClassifier(model_options={"hidden": [8]}, epochs=2, random_state=0,
                       dtype="float64", warm_start=how == "warm_start").fit(x, y)
    before = est.model_.flat_params.copy()
    est.set_params(dtype="float32", lr=1e39)  # 1e39 does not fit float32: refused by SGD
    with pytest.raises(NnumbaError):
        est.fit(x, y) if how == "warm_start" else est.partial_fit(x, y)
    assert est.model_.dtype == np.float64
    np.testing.assert_array_equal(est.model_.flat_params, before)


# ---- 4. summary: a count past a float's range is a raw OverflowError -----------------------

def test_summary_of_a_shape_past_a_floats_range_is_sized_or_refused():
    """summary.py:261 (layer_flops' count check) calls math.isfinite on the layer's
    FLOPs, an int; an int past ~1.8e308 raises OverflowError, which the CLI reports as
    "unexpected ... please report it". _flops_text (summary.py:152-155) was written to
    print exactly such counts ("past a float's range (a plugin's count)"). Here ReLU
    on a per-sample shape of 10**400 elements (400 dims of 10; also
    `nnumba summary relu.json --input-shape` with 20 sizes of 2**62). Should: size it
    (the reference is math.prod of the shape, ReLU's one op per element) or refuse it
    with an nnumba error (TooLargeError: no array holds it)."""
    from nnumba.summary import summarize
    shape = [10] * 400
    try:
        s = summarize([{"type": "ReLU"}], input_shape=shape)
    except NnumbaError:
        return
    assert s.rows[0].forward_flops == math.prod(shape)
    assert "e+400" in s.format()
