"""Peer oracle 26: the scikit-learn estimators against LogisticRegression, Ridge,
MLPClassifier/MLPRegressor, Perceptron and closed forms (all matched); a failed
continued fit after set_params(dtype=) did not leave the estimator as it was."""
import numpy as np
import pytest

pytest.importorskip("sklearn")

from nnumba.sklearn import NNRegressor  # noqa: E402
from nnumba.train import TrainingDiverged  # noqa: E402


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    return X, X @ rng.normal(size=5) * 100  # unscaled targets: lr=5 diverges at once


def _forward(est, X):
    """The fitted MLP's outputs in numpy (Linear, ReLU, Linear), from its own weights."""
    p = dict(est.model_.params())
    h = np.maximum(X @ p["1.weight"].value.T.astype(np.float64) + p["1.bias"].value, 0)
    return (h @ p["3.weight"].value.T.astype(np.float64) + p["3.bias"].value).ravel()


def test_failed_partial_fit_after_set_params_dtype_leaves_the_estimator_as_it_was():
    """README: "A failed fit leaves an estimator as it was". After set_params(dtype=
    "float64"), a diverging partial_fit must raise TrainingDiverged and give back the
    float32 model with its old weights. The restore called model.astype(float32)
    on the diverged float64 weights (~1e104), which raised NonFiniteError from inside the
    except block: the weights were never put back and model_ stayed float64 with them."""
    X, y = _data()
    est = NNRegressor(model_options={"hidden": [6]}, random_state=1, batch_size=8, lr=0.001)
    est.partial_fit(X, y)
    flat = est.model_.flat_params.copy()
    reference = _forward(est, X)  # numpy forward on the weights before the failed call
    est.set_params(dtype="float64", lr=5.0)
    with pytest.raises(TrainingDiverged):
        est.partial_fit(X, y)
    assert est.model_.dtype == np.float32
    np.testing.assert_array_equal(est.model_.flat_params, flat)
    est.set_params(dtype="float32", lr=0.001)
    np.testing.assert_allclose(est.predict(X), reference, rtol=1e-5, atol=1e-4)


def test_failed_warm_start_fit_after_set_params_dtype_leaves_the_estimator_as_it_was():
    """The same through fit(warm_start=True)."""
    X, y = _data()
    est = NNRegressor(model_options={"hidden": [6]}, random_state=1, batch_size=8, lr=0.001,
                      epochs=1, warm_start=True).fit(X, y)
    flat = est.model_.flat_params.copy()
    reference = _forward(est, X)
    est.set_params(dtype="float64", lr=5.0)
    with pytest.raises(TrainingDiverged):
        est.fit(X, y)
    assert est.model_.dtype == np.float32
    np.testing.assert_array_equal(est.model_.flat_params, flat)
    est.set_params(dtype="float32", lr=0.001)
    np.testing.assert_allclose(est.predict(X), reference, rtol=1e-5, atol=1e-4)
