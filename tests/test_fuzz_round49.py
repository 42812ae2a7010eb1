"""Fuzz round 49: the public API with hostile arguments. The perceptron trained on
the caller's float64 set in place (a callback that changed it changed the training);
its refusal of inputs small enough to underflow w . x held only without a bias and
for native byte order; save wrote infinite weights that load_model refuses."""
import numpy as np
import pytest

import nnumba
from nnumba.errors import NnumbaError, NonFiniteError


def _reference_perceptron(x, y, max_epochs, bias=True):
    """The lecture's loop, in plain Python on a private float64 copy of the set."""
    x = np.array(x, dtype=np.float64).reshape(len(x), -1)
    y = np.array(y, dtype=np.float64)
    w, b, updates = np.zeros(x.shape[1]), 0.0, 0
    for _ in range(max_epochs):
        changes = 0
        for n in range(len(x)):
            s = 0.0
            for j in range(x.shape[1]):
                s += x[n, j] * w[j]
            if y[n] * (s + b) <= 0:
                w += y[n] * x[n]
                b += y[n] if bias else 0.0
                changes += 1
        updates += changes
        if changes == 0:
            return w, b, True, updates
    return w, b, False, updates


# ---- finding 1 ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_perceptron_trains_on_the_set_as_given_when_a_callback_changes_it(dtype):
    """A callback that reshuffles (x, y) in place between epochs must not make the
    training pair samples with other samples' labels. float32 sets are copied, so they
    train on the set as given; since 709aaf6 a float64 C-contiguous set is read in place
    while its int labels are a copy: x moves, the labels do not."""
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(200, 5))
    y0 = np.where(x0 @ rng.normal(size=5) >= 0, 1, -1)
    x, y = x0.astype(dtype), y0.copy()
    order = np.random.default_rng(1)

    def reshuffle(row):
        p = order.permutation(len(x))
        x[:] = x[p]
        y[:] = y[p]

    got = nnumba.train_perceptron(x, y, max_epochs=20, callback=reshuffle)
    w, b, converged, updates = _reference_perceptron(x0.astype(dtype), y0, 20)
    assert got.updates == updates
    np.testing.assert_array_equal(got.w, w)
    assert got.b == b and got.converged == converged


def test_perceptron_nan_written_by_a_callback_is_not_reported_as_converged():
    """NaN written into a float64 set during training: every score is NaN, y * NaN <= 0
    is False, so no sample is updated on, and the run reports "converged" with a
    train_error of 0 % for weights that got 20 % wrong one epoch before (the NaN check
    ran once, before the first epoch). Expected: the set as given trains (as a float32
    set does), or a NonFiniteError."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 5))
    y = np.where(x @ rng.normal(size=5) + 0.3 >= 0, 1, -1)
    original = x.copy()

    def nanify(row):
        x[:, 0] = np.nan

    try:
        got = nnumba.train_perceptron(x, y, max_epochs=50, callback=nanify)
    except NonFiniteError:
        return
    w, b, converged, updates = _reference_perceptron(original, y, 50)
    assert (got.converged, got.updates) == (converged, updates)
    np.testing.assert_array_equal(got.w, w)


# ---- finding 2 ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,bias", [(np.float64, True), (">f8", False)])
def test_perceptron_tiny_inputs_are_refused_or_converge(dtype, bias):
    """x = (1e-200, -1e-200), y = (+1, -1) is separable: the lecture's algorithm in exact
    arithmetic converges after 2 updates (w = 2e-200, b = 0). In float64 the products
    w x underflow to 0, so the run makes 2 updates every epoch and never converges.
    nnumba refuses exactly this (NonFiniteError naming the underflow) for a native
    float64 set with bias=False, but not with bias=True nor for a big-endian float64 set."""
    x = np.array([[1e-200], [-1e-200]], dtype=dtype)
    y = np.array([1, -1])
    try:
        got = nnumba.train_perceptron(x, y, max_epochs=50, bias=bias)
    except NonFiniteError:
        return
    assert got.converged, (f"ran {got.epochs} epochs, {got.updates} updates, without "
                           f"converging or an error")


# ---- finding 3 ------------------------------------------------------------------------

def test_a_model_that_save_writes_is_one_load_model_reads(tmp_path):
    """After TrainingDiverged the model keeps its infinite weights; nnumba.save writes
    them without a word, and load_model then refuses the file (NonFiniteError): save
    should refuse (before replacing a good file at that path), or load should read."""
    from nnumba.layers import Linear
    from nnumba.losses import MSE
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = (10 * rng.normal(size=(8, 1))).astype(np.float32)
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    trainer = nnumba.SGDTrainer(model, MSE(), lr=1e38, batch_size=8, precompile=False)
    with pytest.raises(NnumbaError):
        trainer.fit(x, y, epochs=1)
    assert not np.isfinite(model.flat_params).all()  # the state this test is about
    path = tmp_path / "model.npz"
    try:
        nnumba.save(model, path)
    except NnumbaError:
        return  # refused at save: fine
    nnumba.load_model(path)  # written without complaint: must read back
