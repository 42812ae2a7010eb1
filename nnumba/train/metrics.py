"""Evaluation of a model on a data set: mean loss and, where it means something, accuracy."""
from __future__ import annotations

import numpy as np

from ..errors import LabelError, ShapeError
from ..layers.validation import integer, unmasked


def accuracy(y_hat: np.ndarray, y: np.ndarray) -> float | None:
    """Fraction right: argmax for class labels and for one-hot targets, sign for
    labels in {-1, +1}.

    None where accuracy means nothing (regression targets)."""
    y_hat, y = np.asarray(y_hat), np.asarray(unmasked("accuracy", y, "the targets"))
    if y_hat.ndim == 0 or y.ndim == 0 or len(y_hat) != len(y):  # numpy: "could not broadcast"
        raise LabelError(f"accuracy: predictions of shape {y_hat.shape} and targets of shape "
                         f"{y.shape} do not pair up, one per sample")
    if len(y) == 0:  # np.mean of nothing: NaN and a RuntimeWarning
        raise ShapeError("accuracy: no samples")
    if y.ndim == 2 and y.shape[1] == 1:  # labels (N, 1), as the losses take them: int
        y = y.reshape(len(y))            # -1/+1 ones gave None, float ones an accuracy
    if y.ndim == 2 and y.shape == y_hat.shape and y.shape[1] > 1 and \
            np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():  # one-hot
        return float(np.mean(y_hat.argmax(axis=1) == y.argmax(axis=1)))
    labels = y.dtype.kind in "iu" and y.ndim == 1
    if labels and y_hat.ndim == 2 and y_hat.shape[1] > 1:
        if y.min() < 0 or y.max() >= y_hat.shape[1]:  # as the losses: no silent 0 %
            raise LabelError(f"accuracy: labels must be in [0, {y_hat.shape[1]}) for "
                             f"{y_hat.shape[1]} outputs, got {y.min()}..{y.max()}")
        return float(np.mean(y_hat.argmax(axis=1) == y))
    # one -1/+1 label per sample; several columns of them (MSE on 3 outputs) are not labels
    if (labels or y.dtype.kind == "f") and y.ndim == 1 and set(np.unique(y)) <= {-1, 1}:
        pred = np.where(y_hat.reshape(len(y), -1)[:, 0] >= 0, 1, -1)
        return float(np.mean(pred == y))
    return None


def evaluate(model, loss, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> dict:
    """{"loss": mean loss, "accuracy": fraction right or None} over (x, y)."""
    batch_size = integer("evaluate", "batch_size", batch_size, 1, None)
    y_hat = model.predict(x, batch_size=batch_size)
    value = loss.forward(y_hat, y) if loss.reduction == "mean" else loss.forward(y_hat, y) / len(y)
    return {"loss": value, "accuracy": accuracy(y_hat, y)}
