"""Fuzz round 7 and plugin trial 7 (the API from the outside): each test fails on
the code before its fix, and checks against numpy, a closed form or the same
computation done another way."""
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import testing
from nnumba.errors import ContractError, SpecError
from nnumba.layers import Dropout, Linear, ReLU
from nnumba.losses import MSE, CrossEntropy, Loss
from nnumba.train import TrainingDiverged
from nnumba.train.metrics import accuracy


class _Doubles(nnumba.Layer):
    """2x; its _backward forgets to return dl/dx."""
    def _forward(self, x):
        y = self._buffer("y", x.shape)
        np.multiply(x, 2, out=y)
        return y

    def _backward(self, dl_dy):
        dx = self._buffer("dx", dl_dy.shape)
        np.multiply(dl_dy, 2, out=dx)


def _data(n=8):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)).astype(np.float32), rng.integers(0, 2, n)


def test_a_backward_that_returns_none_stops_training_with_an_error():
    x, y = _data()
    model = nnumba.Sequential(Linear(3, 4), _Doubles(), Linear(4, 2), seed=0)
    first = model.layers[0].weight.value.copy()
    with pytest.raises(ContractError, match=r"_Doubles #1: _backward returned None"):
        nnumba.SGDTrainer(model, CrossEntropy(), lr=0.5, batch_size=4).fit(x, y)
    np.testing.assert_array_equal(model.layers[0].weight.value, first)  # no silent step


def test_the_layers_of_a_model_cannot_be_swapped_behind_its_back():
    model = nnumba.Sequential(Linear(3, 4), ReLU(), Linear(4, 2), seed=0)
    with pytest.raises(TypeError):
        model.layers[2] = Linear(4, 2)
    assert [type(layer) for layer in model.layers] == [Linear, ReLU, Linear]


def test_a_trainer_whose_model_was_replaced_refuses_to_fit():
    x, y = _data()
    m1 = nnumba.Sequential(Linear(3, 2), seed=0)
    m2 = nnumba.Sequential(Linear(3, 2), seed=1)
    trainer = nnumba.SGDTrainer(m1, CrossEntropy(), lr=0.5, batch_size=4)
    before = m2.flat_params.copy()
    trainer.model = m2
    with pytest.raises(SpecError, match="optimizer was built for another model"):
        trainer.fit(x, y)
    np.testing.assert_array_equal(m2.flat_params, before)


def test_accuracy_takes_signs_only_from_one_label_per_sample():
    assert accuracy(np.array([[1.0, -1.0, -1.0]]), np.array([[1.0, 1.0, 1.0]])) is None
    # one column: the sign of the first output against the label
    assert accuracy(np.array([[0.5], [-2.0], [3.0]]), np.array([[1.0], [1.0], [-1.0]])) == \
        pytest.approx(1 / 3)
    x = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
    signs = np.where(x[:, :1] > 0, 1.0, -1.0).astype(np.float32).repeat(3, axis=1)
    model = nnumba.Sequential(Linear(2, 3), seed=0)
    history = nnumba.SGDTrainer(model, MSE(), lr=0.01, batch_size=3).fit(
        x, signs, x_test=x, y_test=signs)  # was numpy's broadcast ValueError after the epoch
    assert history.last("test_accuracy") is None


@pytest.mark.parametrize("lr", [0.0, 0.01])
def test_divergence_before_any_update_blames_the_data_not_the_rate(lr):
    model = nnumba.Sequential(Linear(2, 1), seed=0)
    y = np.full((4, 1), 2**64 - 1, np.uint64)  # the squared error overflows float32
    with pytest.raises(TrainingDiverged, match="before any update: the inputs or targets are "
                                               "too large for the model's float32"):
        nnumba.SGDTrainer(model, MSE(), lr=lr, batch_size=4).fit(np.ones((4, 2), np.float32), y)


def test_divergence_at_rate_zero_blames_the_data():
    model = nnumba.Sequential(Linear(2, 1), seed=0)
    x = np.full((4, 2), 1e20, np.float32)  # finite, but the gradient overflows
    with pytest.raises(TrainingDiverged, match="at lr 0: the inputs or targets"):
        nnumba.SGDTrainer(model, MSE(), lr=0.0, batch_size=4).fit(x, np.zeros((4, 1), np.float32))


def test_warm_start_refuses_a_changed_architecture():
    pytest.importorskip("sklearn")
    from nnumba.sklearn import NNClassifier
    x, y = _data(30)
    clf = NNClassifier("logreg", epochs=1, warm_start=True, random_state=0).fit(x, y)
    clf.set_params(model="mlp", model_options={"hidden": [8]})
    with pytest.raises(ValueError, match="model or model_options changed"):
        clf.fit(x, y)
    assert clf.get_params()["model"] == "mlp"
    assert [type(layer).__name__ for layer in clf.model_.layers] == ["Flatten", "Linear"]


def test_history_epochs_count_on_after_a_new_trainer():
    pytest.importorskip("sklearn")
    from nnumba.sklearn import NNClassifier
    x, y = _data(30)
    clf = NNClassifier("logreg", epochs=2, random_state=0, trainer="gd").fit(x, y)
    clf.set_params(trainer="sgd")
    clf.partial_fit(x, y)
    assert [row["epoch"] for row in clf.history_] == [1, 2, 3] and clf.n_iter_ == 3


def test_a_fixed_dropout_mask_survives_a_conversion():
    x = np.ones((4, 3), np.float32)
    model = nnumba.Sequential(Dropout(0.3, resample=False), Linear(3, 2), seed=0)
    kept = model.layers[0].forward(x).copy()
    model.astype(np.float64)
    np.testing.assert_allclose(model.layers[0].forward(x.astype(np.float64)), kept, rtol=1e-6)
    model.layers[0].new_mask()  # a new draw does change it (the test can fail)
    assert not np.allclose(model.layers[0].forward(x.astype(np.float64)), kept)


def test_predict_restores_each_layers_own_mode():
    model = nnumba.Sequential(Linear(3, 4), Dropout(0.5), Linear(4, 2), seed=0)
    model.layers[0].eval()  # a mixed model: the Dropout still in training mode
    model.predict(np.ones((2, 3), np.float32))
    assert [layer.training for layer in model.layers] == [False, True, True]
    assert model.training


class _SumOnly(Loss):
    """MSE summed per sample, with the gradient never scaled (wrong for a mean)."""
    examples = [({"reduction": "sum"}, (3, 2), "values")]

    def _compute(self, y_hat, y, scale):
        d = y_hat - np.asarray(y, y_hat.dtype)
        return (d * d).sum(axis=1), 2 * d  # ignores scale


def test_the_loss_kit_checks_both_reductions():
    with pytest.raises(testing.ConformanceError, match="_SumOnly"):
        testing.check_loss(_SumOnly)
    testing.check_loss(MSE)


@pytest.mark.parametrize("call, says", [
    (lambda: testing.check_all(Linear(3, 2)), "pass its class, check_all\\(Linear\\)"),
    (lambda: testing.check_loss(MSE()), "pass its class, check_loss\\(MSE\\)"),
    (lambda: testing.check_dataset(42), "takes the loader"),
    (lambda: testing.check_layer(ReLU, {}, 3), "shape must be a tuple of positive sizes"),
    (lambda: testing.check_layer(ReLU, {}, (2.0, 4)), "shape must be a tuple of positive"),
])
def test_the_kits_say_what_they_take(call, says):
    with pytest.raises(testing.ConformanceError, match=says):
        call()


def test_the_race_check_warns_where_one_thread_cannot_race():
    import numba
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            testing.check_batch_sums(Linear(3, 2).astype(np.float64), np.ones((2, 3)))
    finally:
        numba.set_num_threads(threads)
    assert any("one thread" in str(w.message) for w in caught)


def test_a_kernel_set_whose_all_finite_returns_nothing_is_named():
    class Quiet:  # the CPU set, but all_finite returns None (as if it only wrote outputs)
        def __getattr__(self, name):
            return (lambda x: None) if name == "all_finite" else getattr(nnumba.kernels.cpu,
                                                                         name)

    class QuietReLU(ReLU):
        kernels = property(lambda self: Quiet())
    with pytest.raises(ContractError, match="all_finite returned None, not a bool"):
        QuietReLU().forward(np.ones((2, 3), np.float32))


def test_summary_counts_keep_three_digits():
    from nnumba.summary import _flops_text
    assert _flops_text(100_416) == "1.00e+05"  # was "1e+05", read as exactly 100,000
    assert _flops_text(99_999) == "99,999"
