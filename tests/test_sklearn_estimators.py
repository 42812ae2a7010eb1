"""nnumba.sklearn against scikit-learn itself: its estimator checks, its Pipeline
and GridSearchCV with worker processes, its MLPClassifier's accuracy on digits,
and its Perceptron weight for weight."""
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install nnumba[sklearn])")

from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import Perceptron  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from nnumba.errors import ShapeError  # noqa: E402
from nnumba.layers import Linear, ReLU  # noqa: E402
from nnumba.sklearn import NNClassifier, NNRegressor, PerceptronClassifier  # noqa: E402

# The checks' data sets are small and not standardised: the classifier passes with
# mlp's own settings; the regressor's squared error needs a small step there (with
# mlp's lr 0.1 it diverges and says so). Small models keep the checks quick.
CHECKED = [
    NNClassifier(),
    NNClassifier(trainer="gd", lr=0.5, epochs=50, dtype="float64", model_options={"hidden": [8]}),
    NNRegressor(model_options={"hidden": [16]}, epochs=50, batch_size=20, lr=0.002),
    PerceptronClassifier(),
]


@parametrize_with_checks(CHECKED)
def test_scikit_learn_estimator_checks(estimator, check):
    """Every check of scikit-learn's; one it skips (pandas or the array API
    missing) says why in the skip reason."""
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def test_digits_accuracy_within_a_point_of_mlpclassifier(digits):
    """The same network (64-100-10, ReLU) and the same training (SGD, momentum
    0.9, lr 0.1, batch 100, 20 epochs, no penalty): 5-fold accuracy on digits."""
    x, y = digits
    ours = make_pipeline(StandardScaler(), NNClassifier(
        model_options={"hidden": [100]}, lr=0.1, momentum=0.9, batch_size=100, epochs=20,
        random_state=0))
    theirs = make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(100,), solver="sgd", learning_rate_init=0.1, momentum=0.9,
        nesterovs_momentum=False, batch_size=100, max_iter=20, alpha=0.0,
        n_iter_no_change=20, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 20 epochs by design
        theirs_accuracy = cross_val_score(theirs, x, y, cv=5).mean()
    ours_accuracy = cross_val_score(ours, x, y, cv=5).mean()
    assert ours_accuracy >= theirs_accuracy - 0.01, (ours_accuracy, theirs_accuracy)
    assert ours_accuracy > 0.9


GRID_SEARCH = textwrap.dedent("""
    import json, numba
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from nnumba.sklearn import NNClassifier

    x, y = load_digits(return_X_y=True)
    NNClassifier(epochs=1).fit(x, y)  # numba's parallel kernels run here first
    pipe = make_pipeline(StandardScaler(), NNClassifier(
        model_options={"hidden": [32]}, epochs=5, random_state=0))
    grid = {"nnclassifier__lr": [0.01, 0.1]}
    scores = {}
    for n_jobs in (2, 1):
        search = GridSearchCV(pipe, grid, cv=3, n_jobs=n_jobs).fit(x, y)
        scores[n_jobs] = search.cv_results_["mean_test_score"].tolist()
    print(json.dumps({"layer": numba.threading_layer(), "scores": scores,
                      "best": search.best_params_}))
""")


def test_pipeline_in_gridsearch_with_two_worker_processes():
    """After numba's OpenMP threads ran in the parent, joblib's loky workers
    (fork + exec) train and score as the parent alone does. The omp layer is
    the one that a plain fork would kill."""
    env = {**os.environ, "NUMBA_THREADING_LAYER": "omp"}
    run = subprocess.run([sys.executable, "-c", GRID_SEARCH], capture_output=True,
                         text=True, env=env, timeout=600)
    if run.returncode != 0 and "threading layer" in run.stderr.lower():
        pytest.skip(f"numba's omp threading layer is not available here: "
                    f"{run.stderr.strip().splitlines()[-1]}")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["layer"] == "omp"
    np.testing.assert_allclose(result["scores"]["2"], result["scores"]["1"], atol=0.01)
    assert result["best"] == {"nnclassifier__lr": 0.1} and max(result["scores"]["2"]) > 0.85


def _scaled(digits, n=600):
    x, y = digits
    return StandardScaler().fit_transform(x[:n]), y[:n]


def test_any_labels_and_probabilities(digits):
    x, y = _scaled(digits)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])[y]
    clf = NNClassifier(model_options={"hidden": [32]}, random_state=0).fit(x, names)
    assert clf.classes_.tolist() == sorted(set(names)) and clf.n_features_in_ == 64
    proba = clf.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(x))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(x)), proba, rtol=1e-6)
    assert clf.score(x, names) > 0.95  # its own training set
    assert clf.n_iter_ == 20 and len(clf.history_) == 20


def test_random_state_decides_everything(digits):
    x, y = _scaled(digits)
    fit = lambda seed: NNClassifier(epochs=3, random_state=seed).fit(x, y)  # noqa: E731
    np.testing.assert_array_equal(fit(1).predict_proba(x), fit(1).predict_proba(x))
    assert not np.array_equal(fit(1).predict_proba(x), fit(2).predict_proba(x))


def test_partial_fit_epochs_are_fit_epochs(digits):
    """k calls of partial_fit train exactly as fit with epochs=k (same seeds, the
    optimizer and the sample order carried over)."""
    x, y = _scaled(digits)
    settings = dict(model_options={"hidden": [32]}, random_state=3)
    whole = NNClassifier(epochs=3, **settings).fit(x, y)
    steps = NNClassifier(**settings)
    with pytest.raises(ValueError, match="classes must be passed"):
        steps.partial_fit(x, y)
    for _ in range(3):
        steps.partial_fit(x, y, classes=np.arange(10))
    np.testing.assert_array_equal(steps.predict_proba(x), whole.predict_proba(x))
    with pytest.raises(ValueError, match=r"labels \[10\]"):
        steps.partial_fit(x[:5], np.full(5, 10))


def test_warm_start_continues_and_cold_start_restarts(digits):
    x, y = _scaled(digits)
    warm = NNClassifier(epochs=2, warm_start=True, random_state=0).fit(x, y)
    model = warm.model_
    warm.fit(x, y)
    assert warm.model_ is model and warm.n_iter_ == 4
    cold = NNClassifier(epochs=2, random_state=0).fit(x, y)
    first = cold.predict_proba(x)
    cold.fit(x, y)
    assert cold.n_iter_ == 2
    np.testing.assert_array_equal(cold.predict_proba(x), first)  # the same fresh start
    assert not np.array_equal(warm.predict_proba(x), first)


def test_pickled_estimator_predicts_and_trains_on(digits):
    x, y = _scaled(digits)
    clf = NNClassifier(epochs=2, random_state=0).fit(x, y)
    twin = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(twin.predict_proba(x), clf.predict_proba(x))
    before = twin.predict_proba(x)
    twin.partial_fit(x, y)
    # the parameters are bound to the model's buffer again: training moves them
    assert not np.array_equal(twin.predict_proba(x), before)
    np.testing.assert_array_equal(clf.predict_proba(x), before)  # the original untouched


def test_a_spec_or_layers_as_the_model(digits):
    x, y = _scaled(digits)
    spec = [{"type": "Linear", "in_features": 64, "out_features": 32}, {"type": "ReLU"},
            {"type": "Linear", "in_features": 32, "out_features": 10}]
    assert NNClassifier(spec, random_state=0).fit(x, y).score(x, y) > 0.95
    layers = [Linear(64, 32), ReLU(), Linear(32, 10)]
    weights = layers[0].weight.value.copy()
    clf = NNClassifier(layers, random_state=0).fit(x, y)
    assert clf.score(x, y) > 0.95 and clf.model_.layers[0] is not layers[0]
    np.testing.assert_array_equal(layers[0].weight.value, weights)  # the caller's, as given
    with pytest.raises(ShapeError, match="expects per-sample input"):
        NNClassifier(spec).fit(x[:, :10], y)
    with pytest.raises(ShapeError, match=r"needs \(3,\)"):
        NNClassifier(spec).fit(x, y % 3)
    with pytest.raises(ValueError, match="has no option hiden"):
        NNClassifier(model_options={"hiden": [8]}).fit(x, y)


def test_regressor_fits_a_linear_function():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    w = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0]])
    y = x @ w + [0.5, -1.0]
    reg = NNRegressor(model="logreg", lr=0.05, epochs=100, batch_size=20, dtype="float64",
                      random_state=0).fit(x, y)  # logreg: one Linear layer, here 3 -> 2
    assert reg.n_outputs_ == 2 and reg.predict(x).shape == (400, 2)
    np.testing.assert_allclose(reg.model_.params()[0][1].value, w.T, atol=1e-3)
    single = NNRegressor(model="logreg", lr=0.05, epochs=100, batch_size=20,
                         random_state=0).fit(x, y[:, 0])
    assert single.predict(x).shape == (400,) and single.score(x, y[:, 0]) > 0.999


def test_perceptron_is_sklearns_perceptron_one_against_the_rest():
    """The lecture's algorithm, as scikit-learn's Perceptron runs it (samples in
    order, step 1, no penalty, one per class against the rest): the same weights."""
    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    for labels, epochs in [(names, 30), (np.where(y == 0, "setosa", "other"), 30)]:
        ours = PerceptronClassifier(max_epochs=epochs).fit(x, labels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            theirs = Perceptron(shuffle=False, eta0=1.0, alpha=0.0, tol=None,
                                max_iter=epochs).fit(x, labels)
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
        np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    assert PerceptronClassifier().fit(x, np.where(y == 0, 1, -1)).converged_  # separable
