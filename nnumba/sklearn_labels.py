"""The estimators' class labels: sorted once, with a clear error for labels that
cannot be (numpy's sort met "a" beside 1 or None with a bare TypeError)."""
import numpy as np
from sklearn.utils.multiclass import check_classification_targets, unique_labels

from .errors import LabelError
from .layers.validation import show


def sorted_classes(y) -> np.ndarray:
    """np.unique(y) of classification targets y (scikit-learn's check, whose own sort
    meets mixed kinds with the same bare TypeError, after a LabelError for those)."""
    try:
        labels = np.unique(y)
    except TypeError as exc:
        raise LabelError(f"y's class labels must be all numbers or all strings, got "
                         f"{show(np.asarray(y, dtype=object).tolist())}: {exc}") from None
    check_classification_targets(y)
    return labels


def checked_classes(classes) -> np.ndarray:
    """partial_fit's ``classes``, sorted (np.unique), once scikit-learn's unique_labels
    (MLPClassifier's check) takes them: np.unique alone flattens a 2-D list, makes NaN
    a class and meets None beside a string with a bare TypeError."""
    try:
        with np.errstate(invalid="ignore"):  # its cast of NaN to int warns first
            unique_labels(classes)
    except (ValueError, TypeError) as exc:
        raise LabelError(f"partial_fit: classes must be a 1-D list of the class labels "
                         f"(numbers or strings, not both; no NaN), got {show(classes)}: "
                         f"{exc}") from None
    return np.unique(classes)
