"""Fuzz round 21: nnumba.sklearn as scikit-learn users use it: partial_fit goes on
through a pickled, joblib-loaded or deep-copied estimator; a failed continued fit
leaves the estimator (its model's weights included) as it was; one fitted model
predicts from several threads as it does serially; fitted estimators pickle at every
protocol.  References: the same estimator without the interruption, scikit-learn's
own MLPClassifier, the serial predictions."""
import copy
import io
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import joblib  # noqa: E402 (scikit-learn's)

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from nnumba.sklearn import NNClassifier, NNRegressor, PerceptronClassifier  # noqa: E402


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    return (x - x.mean(0)) / x.std(0), y


def _pickle(e):
    return pickle.loads(pickle.dumps(e))


def _joblib(e):
    buf = io.BytesIO()
    joblib.dump(e, buf)
    buf.seek(0)
    return joblib.load(buf)


# ---- 1. partial_fit after pickle / joblib / deepcopy is not a continuation ----------------
@pytest.mark.parametrize("through", [_pickle, _joblib, copy.deepcopy],
                         ids=["pickle", "joblib", "deepcopy"])
def test_partial_fit_continues_through_a_pickled_copy(iris, through):
    """scikit-learn's MLPClassifier keeps its optimizer (momentum velocities) and its
    random state in the pickle: partial_fit on the copy is bit for bit partial_fit on
    the original. nnumba drops ``_trainer`` in __getstate__, so the copy restarts
    momentum and the shuffling order, silently."""
    x, y = iris

    def continued(est, via):
        est = clone(est)
        est.partial_fit(x, y, classes=[0, 1, 2])
        est = via(est)
        est.partial_fit(x, y)
        est.partial_fit(x, y)
        return est

    # the convention, checked on scikit-learn's own estimator first
    mlp = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", momentum=0.9, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a, b = continued(mlp, lambda e: e), continued(mlp, through)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)

    ours = NNClassifier(model_options={"hidden": [8]}, momentum=0.9, random_state=0)
    a, b = continued(ours, lambda e: e), continued(ours, through)
    np.testing.assert_array_equal(b.model_.flat_params, a.model_.flat_params)


# ---- 2. a failed warm-start fit / partial_fit does not leave the estimator as it was ------
@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
@pytest.mark.parametrize("Estimator", [NNClassifier, NNRegressor])
def test_a_failed_continued_fit_leaves_the_estimator_as_it_was(iris, how, Estimator):
    """README: 'A failed fit leaves an estimator as it was.' _as_before_on_error
    restores __dict__, but model_ is the same object, trained in place up to the
    divergence: n_iter_ and history_ say nothing happened while predict now raises
    NonFiniteError (or predicts otherwise). The reference is the estimator's own
    weights just before the failed call."""
    x, y = iris
    y = y if Estimator is NNClassifier else x[:, 0] * 100
    est = Estimator(model_options={"hidden": [8]}, epochs=5, random_state=0).fit(x, y)
    est.set_params(lr=1e4, batch_size=10, warm_start=True)  # diverges within an epoch
    for _ in range(20):  # until a call fails (the step diverges within a few epochs)
        weights, n_iter = est.model_.flat_params.copy(), est.n_iter_
        try:
            est.fit(x, y) if how == "warm_start" else est.partial_fit(x, y)
        except Exception:
            break
    else:
        pytest.fail("no call diverged")
    assert est.n_iter_ == n_iter  # restored: the estimator says it did not train
    np.testing.assert_array_equal(est.model_.flat_params, weights)  # ... so neither must model_


# ---- 3. concurrent predict on one fitted conv model corrupts the heap -------------------
CONCURRENT_PREDICT = textwrap.dedent("""
    import sys, threading, warnings, numpy as np
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    if sys.argv[1] == "sklearn":
        from nnumba.sklearn import NNClassifier
        X = rng.random((200, 784)); y = rng.integers(0, 10, 200)
        predict = NNClassifier("lenet", epochs=1, batch_size=100, random_state=0).fit(X, y).predict_proba
    else:
        import nnumba
        X = rng.random((200, 1, 28, 28)).astype(np.float32)
        predict = nnumba.build("lenet", seed=0).predict
    inputs = [X[rng.choice(200, int(n))] for n in rng.integers(1, 200, 16)]
    serial = [predict(a) for a in inputs]
    bad = []
    def work(k):
        for rep in range(5):
            for i in range(k, 16, 4):
                if not np.array_equal(predict(inputs[i]), serial[i]):
                    bad.append(i)
    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print("mismatches", len(bad))
""")


@pytest.mark.parametrize("level", ["sklearn", "model"])
def test_predict_from_several_threads_matches_serial_and_does_not_crash(level):
    """Batch inference from threads (joblib prefer='threads', a web server) on one
    fitted lenet, under the default threading layer: the fused conv-pool layer kept its
    argmax scratch on itself between calls, and another thread's smaller one reached a
    kernel without bounds checks (free(): invalid next size, SIGSEGV, 10 runs of 10).
    A model runs forward, backward and predict one thread at a time now.  The
    reference is the serial predictions in the same process."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env.pop("NUMBA_THREADING_LAYER", None)
    got = subprocess.run([sys.executable, "-c", CONCURRENT_PREDICT, level], env=env,
                         capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, f"status {got.returncode}: {got.stderr[-300:]}"
    assert "mismatches 0" in got.stdout


# ---- 4. fitted NN estimators do not pickle at protocols 0 and 1 ----------------------------
@pytest.mark.parametrize("protocol", [0, 1])
@pytest.mark.parametrize("Estimator", [NNClassifier, NNRegressor])
def test_fitted_estimators_pickle_at_every_protocol(iris, protocol, Estimator):
    """scikit-learn's fitted MLPClassifier and nnumba's PerceptronClassifier pickle at
    every protocol; NNClassifier/NNRegressor raise 'a class that defines __slots__
    without defining __getstate__ cannot be pickled' (layers.parameters.Parameter)."""
    x, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(x, y)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(mlp, protocol=protocol)).predict(x), mlp.predict(x))
    perc = PerceptronClassifier().fit(x, y)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(perc, protocol=protocol)).predict(x), perc.predict(x))
    target = y if Estimator is NNClassifier else x[:, 0]
    est = Estimator(model_options={"hidden": [4]}, epochs=2, random_state=0).fit(x, target)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(est, protocol=protocol)).predict(x), est.predict(x))
