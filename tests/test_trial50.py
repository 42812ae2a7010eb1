"""Trial 50 (a scikit-learn user with only the README): a divergence on an unscaled
column (standard deviation 100) says to scale the inputs, where standardised data are
not told to; the README says that X is dense, that there is no sample_weight, and that
a loss that blew up and came back finite is not reported.  They skip without
scikit-learn."""
from pathlib import Path

import numpy as np
import pytest

import nnumba.errors

datasets = pytest.importorskip("sklearn.datasets")  # (first: nnumba.sklearn's ImportError
sk = pytest.importorskip("nnumba.sklearn")            # without it is not a skip)


def _digits():
    x, y = datasets.load_digits(return_X_y=True)
    return x / 16.0, y


def test_divergence_on_an_unscaled_column_says_to_scale_the_inputs():
    rng = np.random.RandomState(0)
    X = np.c_[rng.randn(300), rng.randn(300) * 100, rng.randint(0, 3, 300)]
    y = ((X[:, 0] + X[:, 1] / 100 + (X[:, 2] == 1)) > 0.5).astype(int)
    with pytest.raises(nnumba.errors.TrainingDiverged,
                       match="scale the inputs: the largest is"):
        sk.NNClassifier(random_state=0).fit(X, y)


def test_standardised_inputs_with_an_outlier_are_not_told_to_scale():
    """(review 46) A rare standardised value of 13 in magnitude got 'scale the inputs'
    at a threshold of 10; a step far too large diverges all the same."""
    rng = np.random.RandomState(0)
    X = rng.randn(300, 3)
    X[0, 0] = 13.0
    y = (X[:, 1] > 0).astype(int)
    with pytest.raises(nnumba.errors.TrainingDiverged, match="lower the learning rate") as info:
        sk.NNClassifier(lr=1e6, random_state=0).fit(X, y)
    assert "scale the inputs" not in str(info.value)


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
    assert "one whose loss blew up and came back finite does not" in readme
