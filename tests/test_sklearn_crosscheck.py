"""nnumba's trainers and features against scikit-learn on the same data.

Tolerances: the perceptron is the same algorithm step for step (sklearn's
Perceptron with shuffle=False, eta0=1, no penalty updates when y (w.x + b) <= 0,
as the lecture), so its weights must be identical. Gradient descent on the
logistic loss reaches the optimum sklearn's solver finds to 1e-3 relative;
subgradient descent on the SVM loss gets within 0.5% of SVC's objective;
training on digits is compared by test accuracy, within 3 points.
"""
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression, Perceptron, SGDClassifier  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from nnumba import GDTrainer, Sequential, train_perceptron  # noqa: E402
from nnumba.data import load_dataset  # noqa: E402
from nnumba.experiments import common, logistic, svm, xor  # noqa: E402
from nnumba.layers import Linear  # noqa: E402
from nnumba.losses import Logistic  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist-5k")


def _flat(x):
    return x.reshape(len(x), -1).astype(np.float64)


def _sk_perceptron(x, y, epochs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Perceptron(shuffle=False, eta0=1.0, alpha=0.0, tol=None, max_iter=epochs,
                          fit_intercept=True).fit(x, y)


def _data_sets(digits):
    x01, y01 = digits.binary(0, 1, "train")
    x8, y8 = _flat(digits.x_train[:600]), np.where(digits.y_train[:600] == 8, 1, -1)
    x_xor, y_xor = xor.xor_data(per_corner=20)
    return {"mnist 0 vs 1": (_flat(x01), y01), "mnist 8 vs rest (600)": (x8, y8),
            "xor raw": (x_xor, y_xor),
            "xor with x_u x_v": (np.column_stack([x_xor, x_xor[:, 0] * x_xor[:, 1]]), y_xor)}


def test_perceptron_is_sklearns_perceptron_step_for_step(digits):
    for name, (x, y) in _data_sets(digits).items():
        ours = train_perceptron(x, y, max_epochs=30)
        theirs = _sk_perceptron(x, y, epochs=30)
        np.testing.assert_array_equal(ours.w, theirs.coef_[0], err_msg=name)
        assert ours.b == theirs.intercept_[0], name


def test_same_separability_verdicts(digits):
    verdicts = {}
    for name, (x, y) in _data_sets(digits).items():
        ours = train_perceptron(x, y, max_epochs=200).converged
        theirs = _sk_perceptron(x, y, epochs=200).score(x, y) == 1.0
        exact = common.linearly_separable(x, y)  # the linear program decides
        assert ours == theirs == exact, name
        verdicts[name] = exact
    assert verdicts == {"mnist 0 vs 1": True, "mnist 8 vs rest (600)": True,
                        "xor raw": False, "xor with x_u x_v": True}


def test_logistic_gd_reaches_sklearns_unpenalised_optimum():
    x, y, w0 = logistic.two_classes()
    _, path = logistic.descend(x, y, w0, eta=0.125, iterations=300)
    # C huge = no penalty, in every sklearn version (penalty=None is deprecated in 1.8).
    theirs = LogisticRegression(C=1e12, tol=1e-10, max_iter=1000).fit(x, y)
    np.testing.assert_allclose(path[-1], [*theirs.coef_[0], theirs.intercept_[0]], rtol=1e-3)


def test_logistic_accuracy_on_digits_matches_sgdclassifier(digits):
    # 3 vs 5, a hard pair: not separable, so the accuracies can differ and say something.
    x, y = digits.binary(3, 5, "train")
    xt, yt = digits.binary(3, 5, "test")
    x, xt = _flat(x), _flat(xt)
    model = Sequential(Linear(784, 1), seed=0).astype(np.float64)
    GDTrainer(model, Logistic(), lr=0.5, momentum=0.9, batch_size=len(x)).fit(x, y, epochs=100)
    ours = np.mean(np.where(model.predict(xt)[:, 0] >= 0, 1, -1) == yt)
    theirs = SGDClassifier(loss="log_loss", alpha=1e-4, max_iter=50, tol=None,
                           random_state=0).fit(x, y).score(xt, yt)
    assert ours > 0.9
    assert abs(ours - theirs) <= 0.03, (ours, theirs)


@pytest.mark.parametrize("lam", [1e-2, 1e-3])
def test_svm_loss_reaches_the_svc_solution(lam):
    # lambda ||w||^2 + mean hinge = 2 lambda (0.5 ||w||^2 + C sum hinge), C = 1 / (2 lambda N)
    x, y = svm.separable_2d(n=100)
    w, b, objective = svm.train_svm(x, y, lam, epochs=3000)
    svc = SVC(kernel="linear", C=1 / (2 * lam * len(x)), tol=1e-8).fit(x, y)
    w_ref, b_ref = svc.coef_[0], svc.intercept_[0]
    reference = lam * w_ref @ w_ref + np.mean(np.maximum(0, 1 - y * (x @ w_ref + b_ref)))
    # Subgradient steps approach the optimum from above, never below it.
    assert reference * (1 - 1e-9) <= objective <= reference * (1 + 5e-3)
    np.testing.assert_allclose(np.append(w, b), np.append(w_ref, b_ref), rtol=3e-2, atol=3e-2)


def test_polynomial_features_match_sklearn():
    nnumba_features = pytest.importorskip("nnumba_features")
    from sklearn.preprocessing import PolynomialFeatures
    x = np.random.default_rng(0).normal(size=(7, 3))
    for features in (1, 2, 3):
        for degree in (0, 1, 2, 4):
            for bias in (True, False):
                if degree == 0 and not bias:
                    continue
                ours = nnumba_features.PolynomialFeatures(features, degree, bias).astype(
                    np.float64).forward(np.ascontiguousarray(x[:, :features]))
                theirs = PolynomialFeatures(degree, include_bias=bias).fit_transform(
                    x[:, :features])
                np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_knn_matches_kneighborsclassifier():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 2)), np.where(rng.random(200) < 0.5, 1, -1)
    x_test = rng.normal(size=(300, 2))
    for k in (1, 5, 11):
        theirs = KNeighborsClassifier(n_neighbors=k).fit(x, y).predict(x_test)
        np.testing.assert_array_equal(common.knn_predict(x, y, x_test, k), theirs)
