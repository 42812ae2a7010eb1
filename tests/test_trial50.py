"""Trial 50 (a scikit-learn user with only the README): a classifier whose loss blew
up without becoming NaN, ending worse than predicting every class alike, warns with a
ConvergenceWarning (it returned a one-class predictor silently); a divergence on an
unscaled column (standard deviation 100) says to scale the inputs; the README says
that X is dense and there is no sample_weight.  They skip without scikit-learn."""
import warnings
from pathlib import Path

import numpy as np
import pytest

import nnumba.errors

sk = pytest.importorskip("nnumba.sklearn")
datasets = pytest.importorskip("sklearn.datasets")
exceptions = pytest.importorskip("sklearn.exceptions")


def _digits():
    x, y = datasets.load_digits(return_X_y=True)
    return x / 16.0, y


def test_a_classifier_whose_loss_blew_up_warns():
    """Reference: a final cross-entropy above ln K is worse than the uniform prediction;
    here the model predicts one class for every sample (chance accuracy)."""
    x, y = _digits()
    est = sk.NNClassifier(lr=50.0, momentum=0.9, epochs=3, random_state=0)
    with pytest.warns(exceptions.ConvergenceWarning,
                      match=r"above ln\(10\) = 2\.3.*learning rate \(now 50\.0\)"):
        est.fit(x * 100, y)
    assert est.history_[-1]["train_loss"] > np.log(10)
    assert len(np.unique(est.predict(x * 100))) == 1
    with pytest.warns(exceptions.ConvergenceWarning):  # partial_fit's epochs too
        sk.NNClassifier(lr=50.0, momentum=0.9, random_state=0).partial_fit(
            x * 100, y, classes=np.arange(10))


def test_a_calm_fit_does_not_warn():
    x, y = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("error", exceptions.ConvergenceWarning)
        est = sk.NNClassifier(epochs=3, random_state=0).fit(x, y)
    assert est.score(x, y) > 0.9


def test_divergence_on_an_unscaled_column_says_to_scale_the_inputs():
    rng = np.random.RandomState(0)
    X = np.c_[rng.randn(300), rng.randn(300) * 100, rng.randint(0, 3, 300)]
    y = ((X[:, 0] + X[:, 1] / 100 + (X[:, 2] == 1)) > 0.5).astype(int)
    with pytest.raises(nnumba.errors.TrainingDiverged,
                       match="scale the inputs: the largest is"):
        sk.NNClassifier(random_state=0).fit(X, y)


def test_the_readme_says_x_is_dense_and_there_is_no_sample_weight():
    sparse = pytest.importorskip("scipy.sparse")
    x, y = _digits()
    with pytest.raises(TypeError, match="dense data is required"):
        sk.NNClassifier(epochs=1).fit(sparse.csr_matrix(x), y)
    with pytest.raises(TypeError, match="sample_weight"):
        sk.NNClassifier(epochs=1).fit(x, y, sample_weight=np.ones(len(x)))
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "`X` is dense (a sparse matrix is refused" in readme
    assert "there is no `sample_weight`" in readme
