"""Fuzz round 38: the estimators parsed features that are not numbers ("0.5" as
0.5 at predict, a missing date as -9.2e18 at fit); SGD took an lr that is 0 in the
model's dtype and trained nothing; PerceptronClassifier ended max_epochs without
scikit-learn's ConvergenceWarning."""
import datetime
import warnings

import numpy as np
import pytest

import nnumba
from nnumba.errors import DTypeError, SpecError
from nnumba.layers import Linear
from nnumba.losses import CrossEntropy
from nnumba.train import SGDTrainer

ESTIMATORS = ["NNClassifier", "NNRegressor", "PerceptronClassifier"]


def _data(n=20, d=3):
    x = np.random.default_rng(0).normal(size=(n, d))
    return x, (x[:, 0] > 0).astype(int)


def _estimator(name):
    pytest.importorskip("sklearn")
    import nnumba.sklearn as nsk
    kwargs = {} if name == "PerceptronClassifier" else {"epochs": 1, "random_state": 0}
    return getattr(nsk, name)(**kwargs)


def _target(name, y):
    return y.astype(float) if name == "NNRegressor" else y


def _not_numbers(x):
    days = np.arange(x.size).reshape(x.shape).astype("datetime64[D]")
    days[0, 0] = np.datetime64("NaT")
    strings = x.astype(object)
    strings[1, 2] = "0.5"
    return {"str": x.astype(str), "bytes": x.astype("S12"), "datetime": days,
            "timedelta": days - days[1, 1], "object str": strings,
            "object date": np.full(x.shape, datetime.date(2026, 1, 1), dtype=object)}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_predict_refuses_features_that_are_not_numbers(name):
    """scikit-learn's own MLPClassifier refuses strings at predict; the estimators
    parsed them (and cast dates) and predicted."""
    x, y = _data()
    est = _estimator(name).fit(x, _target(name, y))
    from sklearn.neural_network import MLPClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = MLPClassifier(max_iter=1, random_state=0).fit(x, y)
    with pytest.raises(ValueError):
        reference.predict(x.astype(str))
    for kind, bad in _not_numbers(x).items():
        with pytest.raises(DTypeError, match="X must hold numbers"):
            est.predict(bad)
        with pytest.raises(DTypeError, match="X must hold numbers"):
            est.predict(bad.tolist())  # a list of them: as its array
    assert est.predict(x).shape == (len(x),)  # numbers still go


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fit_refuses_features_that_are_not_numbers(name):
    """numpy casts NaT to -9.2e18, which the estimators trained on without a word
    (`nnumba train --data` refuses the same array); the estimator stays unfitted."""
    x, y = _data()
    assert float(_not_numbers(x)["datetime"].astype(np.float64)[0, 0]) < -9e18  # numpy's cast
    for kind, bad in _not_numbers(x).items():
        est = _estimator(name)
        with pytest.raises(DTypeError, match="X must hold numbers"):
            est.fit(bad, _target(name, y))
        assert not hasattr(est, "n_features_in_"), kind


def test_numbers_of_every_kind_still_fit():
    """bool, int, object arrays of numbers: what check_array converts exactly."""
    pytest.importorskip("sklearn")
    from nnumba.sklearn import PerceptronClassifier
    x = np.array([[0, 1], [1, 0], [2, 3], [3, 2]])
    y = np.array([0, 0, 1, 1])
    for features in (x, x.astype(bool), x.astype(object), x.astype(np.uint8), x.tolist()):
        coef = PerceptronClassifier().fit(features, y).coef_
        as_floats = np.asarray(features).astype(float)  # numpy's cast: the reference
        np.testing.assert_array_equal(coef, PerceptronClassifier().fit(as_floats, y).coef_)


def test_sgd_refuses_an_lr_below_the_dtypes_smallest_normal():
    """lr=1e-50 is 0.0 in float32 (numpy's cast): 2 epochs moved no weight. In float64
    it is a number, and lr=0 given as 0 trains nothing on purpose."""
    assert np.float32(1e-50) == 0.0
    x, y = _data(40, 4)
    model = nnumba.Sequential(Linear(4, 2), seed=0)
    with pytest.raises(SpecError, match="smallest normal"):
        SGDTrainer(model, CrossEntropy(), lr=1e-50).fit(x.astype(np.float32), y, epochs=2)
    with pytest.raises(SpecError, match="smallest normal"):
        nnumba.optim.SGD(model, lr=1e-40)  # subnormal in float32
    before = model.flat_params.copy()
    SGDTrainer(model, CrossEntropy(), lr=0).fit(x.astype(np.float32), y, epochs=1)
    np.testing.assert_array_equal(model.flat_params, before)
    model64 = nnumba.Sequential(Linear(4, 2), seed=0).astype(np.float64)
    SGDTrainer(model64, CrossEntropy(), lr=1e-50).fit(x, y, epochs=1)


def test_perceptron_classifier_warns_when_max_epochs_ends_it():
    """scikit-learn's Perceptron says ConvergenceWarning when max_iter ends the fit; a
    separable set converges without one."""
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Perceptron
    from nnumba.sklearn import PerceptronClassifier
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)), rng.integers(0, 2, 40)  # random labels: not separable
    with pytest.warns(ConvergenceWarning):
        Perceptron(max_iter=3).fit(x, y)
    with pytest.warns(ConvergenceWarning, match="max_epochs"):
        assert PerceptronClassifier(max_epochs=3).fit(x, y).converged_ is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert PerceptronClassifier().fit(x, (x[:, 0] > 0).astype(int)).converged_
