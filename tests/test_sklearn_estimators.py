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
# mlp's own settings, the regressor with its own default step (at mlp's lr 0.1 its
# squared error diverged, and said so). Small models keep the other checks quick.
CHECKED = [
    NNClassifier(),
    NNRegressor(),
    NNClassifier(trainer="gd", lr=0.5, epochs=50, dtype="float64", model_options={"hidden": [8]}),
    NNRegressor(model_options={"hidden": [16]}, epochs=50, batch_size=20, lr=0.002),
    NNRegressor(model_options={"hidden": [16]}, epochs=50, batch_size=20, lr=0.002,
                dtype="float64"),
    PerceptronClassifier(),
]


def expected_failures(estimator) -> dict:
    """scikit-learn asks every multi-output regressor for float64 predictions; ours
    come in the dtype the model computes in, float32 by default. A float64 copy
    would claim a precision never computed, and then fail the subset-invariance
    check, which holds float64 to 1e-7 (one row and a batch are summed in other
    orders by the BLAS). With dtype="float64" the check passes, and runs so."""
    if isinstance(estimator, NNRegressor) and estimator.dtype == "float32":
        return {"check_regressor_multioutput": "float32 predictions for dtype='float32', "
                                               "by design: the precision computed"}
    return {}


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failures)
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
    assert proba.dtype == np.float32  # the model's dtype: sums to 1 within float32's
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(x))
    # float32 logs of probabilities down to 1e-15: exp gives back |log p| * 1.2e-7
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(x)), proba, rtol=1e-5)
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


@pytest.mark.parametrize("Estimator", [NNClassifier, NNRegressor])
@pytest.mark.parametrize("params, message", [
    # int() used to train 1.5 as 1 epoch, "2" as 2 and True as 1
    ({"epochs": 1.5}, r"epochs must be an integer >= 1, got 1.5 \(float\)"),
    ({"epochs": "2"}, r"epochs must be an integer >= 1, got '2' \(str\)"),
    ({"epochs": True}, r"epochs must be an integer >= 1, got True \(bool\)"),
    ({"epochs": 0}, r"epochs must be an integer >= 1, got 0"),
    ({"trainer": ["sgd"]}, r"trainer must be one of \['gd', 'sgd'\], got \['sgd'\]"),
    ({"trainer": "adam"}, r"trainer must be one of \['gd', 'sgd'\], got 'adam'"),
    ({"model_options": [1]}, r"model_options must be a dict of the named model's options"
                             r".*, got \[1\]"),
    ({"model_options": "x"}, r"model_options must be a dict.*, got 'x'"),
    ({"model_options": {1: [8]}}, r"model_options must be a dict.*by name"),
    ({"dtype": ["float32"]}, r"dtype must be one of \('float32', 'float64'\), got "
                             r"\['float32'\]"),
    ({"warm_start": "no"}, r"warm_start must be true or false, got 'no'"),
])
def test_bad_settings_are_a_clear_value_error_at_fit(Estimator, params, message):
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20) % 2
    estimator = Estimator(**params)  # scikit-learn's convention: nothing checked here
    with pytest.raises(ValueError, match=message):
        estimator.fit(x, y)
    assert not hasattr(estimator, "model_")
    if "epochs" not in params:
        with pytest.raises(ValueError, match=message):
            Estimator(**params).partial_fit(x, y, **(
                {"classes": [0, 1]} if Estimator is NNClassifier else {}))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_outputs_come_in_the_dtype_the_model_computes_in(dtype):
    """predict_proba used to be a float64 copy of float32 values, which scikit-learn's
    subset-invariance check then held to float64's tolerance."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    labels = np.array(["a", "b", "c"])[np.arange(40) % 3]
    clf = NNClassifier(model_options={"hidden": [8]}, epochs=3, dtype=dtype,
                       random_state=0).fit(x, labels)
    raw = clf.model_.predict(x.astype(dtype)).astype(np.float64)
    want = np.exp(raw - raw.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    proba, log_proba = clf.predict_proba(x), clf.predict_log_proba(x)
    assert proba.dtype == log_proba.dtype == np.dtype(dtype)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(proba, want, rtol=rtol)
    np.testing.assert_allclose(log_proba, np.log(want), rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(clf.predict(x), clf.classes_[raw.argmax(axis=1)])
    assert clf.predict(x).dtype == labels.dtype
    reg = NNRegressor(model_options={"hidden": [8]}, epochs=3, lr=0.01, dtype=dtype,
                      random_state=0).fit(x, x[:, :2])
    out = reg.predict(x)
    assert out.dtype == np.dtype(dtype) and out.shape == (40, 2)
    np.testing.assert_array_equal(out, reg.model_.predict(x.astype(dtype)))
    # one sample at a time, as the subset-invariance check asks, to float32's precision
    one = np.concatenate([reg.predict(x[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(one, out[:5], rtol=1e-4 if dtype == "float32" else 1e-7)


def test_one_sample_or_the_batch_under_the_haswell_blas_kernels():
    """scikit-learn's subset-invariance checks, which failed when OpenBLAS's Haswell
    kernels sum a batch in another order than a single row (the coretype is chosen at
    import: a fresh process)."""
    if os.environ.get("NNUMBA_BLAS_CORETYPE") == "Haswell":
        pytest.skip("this run has the Haswell kernels: the checks themselves run here")
    from llvmlite import binding
    features = binding.get_host_cpu_features()
    if not (features.get("avx2") and features.get("fma")):
        pytest.skip("OpenBLAS's Haswell kernels need a CPU with AVX2 and FMA")
    env = {**os.environ, "NNUMBA_BLAS_CORETYPE": "Haswell"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"{__file__}::test_scikit_learn_estimator_checks", "-k",
                          "check_methods_subset_invariance and not Perceptron"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    checked = sum(not isinstance(e, PerceptronClassifier) for e in CHECKED)
    assert f"{checked} passed" in run.stdout and "failed" not in run.stdout, run.stdout[-3000:]
