"""The lecture's perceptron as a scikit-learn classifier (imported through
:mod:`nnumba.sklearn`, which says what scikit-learn it needs)."""
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from .errors import NonFiniteError
from .layers.validation import flag
from .sklearn_inputs import check_numbers
from .sklearn_labels import sorted_classes
from .sklearn_restore import as_before_on_error
from .train import train_perceptron
from .train.perceptron import score_rows

__all__ = ["PerceptronClassifier"]


class PerceptronClassifier(ClassifierMixin, BaseEstimator):
    """The lecture's perceptron (``nnumba.train_perceptron``): weights from zero,
    the samples in order, ``w += y x`` on every mistake, until an epoch without
    one or ``max_epochs``. Deterministic, so there is no ``random_state``.

    Two classes train one perceptron (+1 is ``classes_[1]``, and a score of
    exactly 0 predicts it, as the lecture's sign(0) = +1; scikit-learn's
    ``Perceptron`` predicts ``classes_[0]`` there; training counts a score of 0 as a
    mistake for either class, as the lecture's rule y (w . x) <= 0 does, so a converged
    perceptron scores no training sample 0); more train one per class
    against the rest, and the highest score wins. Attributes: ``coef_``
    (classes or 1, features), ``intercept_``, ``converged_`` (every perceptron
    converged), ``n_iter_`` (the most epochs any ran), ``classes_``,
    ``n_features_in_``. ``fit_intercept=False``: no bias weight (``intercept_`` 0), the
    homogeneous perceptron of the convergence proof.

    No ``partial_fit`` or ``warm_start``: the lecture's algorithm starts from
    zero weights, and ``train_perceptron`` takes no others.
    """

    def __init__(self, max_epochs=100, fit_intercept=True):
        self.max_epochs = max_epochs
        self.fit_intercept = fit_intercept

    def fit(self, X, y):
        with as_before_on_error(self):
            check_numbers("PerceptronClassifier", X)
            X, y = validate_data(self, X, y, dtype=np.float64)
            self.classes_ = sorted_classes(y)
            if len(self.classes_) < 2:
                raise ValueError(f"the perceptron needs two classes or more; y holds one class, "
                                 f"{self.classes_[:1].tolist()[0]!r}")  # 0.0, not np.float64(0.0)
            positives = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
            bias = flag("PerceptronClassifier", "fit_intercept", self.fit_intercept)
            runs, interrupted = [], False
            for c in positives:
                try:
                    runs.append(train_perceptron(X, np.where(y == c, 1, -1), bias=bias,
                                                 max_epochs=self.max_epochs))
                except KeyboardInterrupt as stop:  # as NNClassifier: the epochs run are kept
                    if getattr(stop, "result", None) is None:
                        raise  # before any epoch
                    runs.append(stop.result)
                    interrupted = True
                    break
            untrained = len(positives) - len(runs)  # (after an interrupt): the zero weights
            self.coef_ = np.array([r.w for r in runs] + [np.zeros(X.shape[1])] * untrained)
            self.intercept_ = np.array([r.b for r in runs] + [0.0] * untrained)
            self.converged_ = not interrupted and all(r.converged for r in runs)
            self.n_iter_ = max(r.epochs for r in runs)
        if interrupted:
            rest = f"; the {untrained} after it keep zero weights" if untrained else ""
            warnings.warn(f"PerceptronClassifier: training interrupted by user in perceptron "
                          f"{len(runs)} of {len(positives)}, after {runs[-1].epochs} epochs (its "
                          f"weights so far{rest})", UserWarning, stacklevel=2)
        elif not self.converged_:  # as scikit-learn's Perceptron says it
            warnings.warn(f"PerceptronClassifier: max_epochs ({self.max_epochs}) reached "
                          f"before an epoch without an update (a sample on the wrong side of "
                          f"the boundary, or on it): the classes may not be linearly "
                          f"separable, or need more epochs", ConvergenceWarning, stacklevel=2)
        return self

    def decision_function(self, X):
        """w . x + b, float64: (n,) for two classes (>= 0 is ``classes_[1]``), else
        one column per class."""
        check_is_fitted(self, "coef_")
        check_numbers("PerceptronClassifier", X)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        scores = score_rows(X, self.coef_, self.intercept_)  # predict agrees with the fit
        if not np.isfinite(scores).all():  # NaN predicted classes_[0], with a warning only
            raise NonFiniteError("PerceptronClassifier: the scores w . x + b of these inputs "
                                 "overflow float64; scale the inputs (as for training)")
        return scores.ravel() if len(self.classes_) == 2 else scores

    def predict(self, X):
        """The class of ``classes_`` (its dtype) the scores pick."""
        scores = self.decision_function(X)
        if scores.ndim == 1:  # the lecture's sigma: +1 where w . x + b >= 0
            return self.classes_[(scores >= 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]
