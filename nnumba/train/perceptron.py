"""The lecture's perceptron algorithm, exactly:

    w = 0; for each epoch, for each n in order: if y_n (w . x_n) <= 0: w += y_n x_n;
    stop after an epoch without change, or after max_epochs.

The bias is one more weight on a constant input feature equal to 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DTypeError, LabelError, ShapeError
from ..kernels.cpu.perceptron import perceptron_epoch, sign_errors


@dataclass
class PerceptronResult:
    w: np.ndarray           # (D,) weights of the raw features
    b: float                # bias (the weight of the constant feature)
    converged: bool         # an epoch went by without a change
    updates: int            # total number of updates k
    history: list = field(default_factory=list)  # per epoch: epoch, nb_changes, train_error, test_error

    def decision(self, x) -> np.ndarray:
        return x.reshape(len(x), -1) @ self.w + self.b

    def predict(self, x) -> np.ndarray:
        """sigma(w . x + b) in {-1, +1}."""
        return np.where(self.decision(x) >= 0, 1, -1)

    def table(self) -> str:
        """The lecture's table: epoch, nb_changes, train_error, test_error."""
        lines = []
        for row in self.history:
            test = row["test_error"]
            test_text = "" if test is None else f" test_error {100 * test:.2f}%"
            lines.append(f"epoch {row['epoch']} nb_changes {row['nb_changes']} "
                         f"train_error {100 * row['train_error']:.2f}%{test_text}")
        return "\n".join(lines)

    def to_model(self):
        """A Sequential (Flatten, Linear(D, 1), Threshold) carrying these weights."""
        from ..layers import Flatten, Linear, Threshold
        from ..model import Sequential
        linear = Linear(self.w.size, 1)
        linear.weight.value[...] = self.w.reshape(1, -1)
        linear.bias.value[...] = self.b
        return Sequential(Flatten(), linear, Threshold())


def _prepare(x, y, what):
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise DTypeError(f"perceptron: {what} inputs must be a float numpy array")
    if len(x) == 0:
        raise ShapeError(f"perceptron: {what} set is empty")
    y = np.asarray(y)
    if y.shape != (len(x),):
        raise LabelError(f"perceptron: {what} set has {len(x)} inputs but labels of "
                         f"shape {y.shape}")
    if not np.isin(y, (-1, 1)).all():
        raise LabelError(f"perceptron: labels must be -1 or +1, got {np.unique(y)[:5].tolist()}")
    flat = x.reshape(len(x), -1)
    if not np.isfinite(flat).all():
        raise ValueError(f"perceptron: {what} inputs hold NaN or infinity")
    # The bias as a constant feature equal to 1; float64 as the lecture's np.zeros.
    with_one = np.empty((len(x), flat.shape[1] + 1))
    with_one[:, :-1] = flat
    with_one[:, -1] = 1.0
    return with_one, y.astype(np.float64)


def train_perceptron(x, y, *, max_epochs: int = 100, x_test=None, y_test=None,
                     callback=None) -> PerceptronResult:
    """Run the lecture's perceptron on (x, y), labels in {-1, +1}; see the module docstring."""
    if int(max_epochs) < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
    xs, ys = _prepare(x, y, "training")
    test = _prepare(x_test, y_test, "test") if x_test is not None else None
    if test is not None and test[0].shape[1] != xs.shape[1]:
        raise ShapeError(f"perceptron: test inputs have {test[0].shape[1] - 1} features, "
                         f"training inputs {xs.shape[1] - 1}")
    w = np.zeros(xs.shape[1])
    history, updates, converged = [], 0, False
    for epoch in range(int(max_epochs)):
        changes = perceptron_epoch(xs, ys, w)
        updates += changes
        row = {"epoch": epoch, "nb_changes": int(changes),
               "train_error": sign_errors(xs, ys, w) / len(xs),
               "test_error": sign_errors(*test, w) / len(test[0]) if test else None}
        history.append(row)
        if callback is not None:
            callback(row)
        if changes == 0:
            converged = True
            break
    return PerceptronResult(w[:-1].copy(), float(w[-1]), converged, updates, history)
