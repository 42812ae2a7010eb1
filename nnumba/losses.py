"""Losses: a value and its gradient with respect to the prediction.

Every loss reduces per-sample losses by their mean (default, as PyTorch) or sum
(the lecture's sums over samples). It registers through the same plugin hook
a third party would use.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from .errors import DTypeError, LabelError, ShapeError
from .hookspecs import hookimpl
from .kernels.cpu import losses as kernels

REDUCTIONS = ("mean", "sum")


class Loss:
    """Base class. Subclasses implement ``_compute(y_hat, y, scale)`` returning
    ``(per_sample_losses, dl_dyhat)`` with the gradient already scaled."""

    type_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("type_name"):
            cls.type_name = cls.__name__

    def __init__(self, reduction: str = "mean"):
        if reduction not in REDUCTIONS:
            raise ValueError(f"{self.type_name}: reduction must be one of {REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction
        self._grad = None

    def forward(self, y_hat: np.ndarray, y: np.ndarray) -> float:
        """The reduced loss of a batch; keeps the gradient for :meth:`backward`."""
        if not isinstance(y_hat, np.ndarray) or y_hat.dtype not in (np.float32, np.float64):
            raise DTypeError(f"{self.type_name} loss: expected predictions as a float32 or "
                             f"float64 numpy array, got {getattr(y_hat, 'dtype', type(y_hat))}")
        if y_hat.ndim == 0 or y_hat.shape[0] == 0:
            raise ShapeError(f"{self.type_name} loss: got an empty batch (shape {y_hat.shape})")
        if not isinstance(y, np.ndarray):
            y = np.asarray(y)
        if y.shape[:1] != y_hat.shape[:1]:
            raise LabelError(f"{self.type_name} loss: {y_hat.shape[0]} predictions but "
                             f"{y.shape[0] if y.ndim else 'scalar'} targets")
        n = y_hat.shape[0]
        scale = y_hat.dtype.type(1.0 / n if self.reduction == "mean" else 1.0)
        losses, self._grad = self._compute(np.ascontiguousarray(y_hat), y, scale)
        total = losses.sum(dtype=np.float64)
        return float(total / n if self.reduction == "mean" else total)

    __call__ = forward

    def backward(self, weight: float = 1.0) -> np.ndarray:
        """dl/dy_hat of ``weight * loss`` for the last batch given to forward()."""
        if self._grad is None:
            raise RuntimeError(f"{self.type_name} loss: backward() called before forward()")
        if weight != 1.0:
            return self._grad * self._grad.dtype.type(weight)
        return self._grad

    def penalty(self, params) -> float:
        """A term on the parameters (e.g. the SVM's lambda ||w||^2); none by default."""
        return 0.0

    def penalty_backward(self, params, weight: float = 1.0):
        """Accumulate the penalty's gradient into the parameters' gradients."""

    def config(self) -> dict:
        return {"reduction": self.reduction}

    def __repr__(self):
        return f"{self.type_name}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


def _pm_one_labels(loss: Loss, y_hat: np.ndarray, y: np.ndarray):
    """Predictions (N,) or (N, 1) and labels in {-1, +1}, as flat arrays of y_hat's dtype."""
    if y_hat.ndim == 2 and y_hat.shape[1] == 1:
        y_hat = y_hat.reshape(-1)
    if y_hat.ndim != 1:
        raise ShapeError(f"{loss.type_name} loss: expected predictions of shape (N,) or "
                         f"(N, 1), got {y_hat.shape}")
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or not np.isin(y, (-1, 1)).all():
        raise LabelError(f"{loss.type_name} loss: labels must be -1 or +1 "
                         f"(got values {np.unique(y)[:5].tolist()} ...)")
    return y_hat, np.ascontiguousarray(y, dtype=y_hat.dtype)


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits (N, C) and integer class labels (N,)."""

    def _compute(self, z, y, scale):
        if z.ndim != 2:
            raise ShapeError(f"CrossEntropy loss: expected logits of shape (N, C), got {z.shape}")
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise LabelError(f"CrossEntropy loss: expected integer class labels of shape "
                             f"(N,), got {y.dtype.name} of shape {y.shape}")
        if y.min() < 0 or y.max() >= z.shape[1]:
            raise LabelError(f"CrossEntropy loss: labels must lie in [0, {z.shape[1]}), "
                             f"got values from {y.min()} to {y.max()}")
        losses = np.empty(z.shape[0], z.dtype)
        grad = np.empty_like(z)
        kernels.softmax_cross_entropy(z, y.astype(np.int64, copy=False), scale, losses, grad)
        return losses, grad


class MSE(Loss):
    """Squared error: per sample ||y_hat - y||^2; ``mean`` divides by N*K as PyTorch does."""

    def _compute(self, y_hat, y, scale):
        if y.shape != y_hat.shape:
            raise ShapeError(f"MSE loss: targets of shape {y.shape} do not match "
                             f"predictions of shape {y_hat.shape}")
        shape = y_hat.shape
        yh2 = y_hat.reshape(shape[0], -1)
        k = yh2.shape[1]
        if self.reduction == "mean":
            scale = scale / y_hat.dtype.type(k)
        losses = np.empty(shape[0], y_hat.dtype)
        grad = np.empty_like(yh2)
        kernels.squared_error(yh2, np.ascontiguousarray(y, y_hat.dtype).reshape(shape[0], -1),
                              scale, losses, grad)
        return (losses / k if self.reduction == "mean" else losses), grad.reshape(shape)


class Logistic(Loss):
    """The lecture's logistic loss -log sigmoid(y (w.x + b)) for labels in {-1, +1}."""

    def _compute(self, y_hat, y, scale):
        shape = y_hat.shape
        flat, labels = _pm_one_labels(self, y_hat, y)
        losses = np.empty(flat.shape[0], flat.dtype)
        grad = np.empty_like(flat)
        kernels.logistic(flat, labels, scale, losses, grad)
        return losses, grad.reshape(shape)


class Hinge(Loss):
    """The lecture's SVM loss: lambda ||w||^2 + mean max(0, 1 - y (w.x + b)).

    The penalty is on every parameter named ``weight`` (biases are free), and
    the trainers add it once per step."""

    margin = 1.0

    def __init__(self, lam: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        if lam < 0:
            raise ValueError(f"{self.type_name}: lam must be >= 0, got {lam}")
        self.lam = float(lam)

    def _compute(self, y_hat, y, scale):
        shape = y_hat.shape
        flat, labels = _pm_one_labels(self, y_hat, y)
        losses = np.empty(flat.shape[0], flat.dtype)
        grad = np.empty_like(flat)
        kernels.hinge(flat, labels, flat.dtype.type(self.margin), scale, losses, grad)
        return losses, grad.reshape(shape)

    def penalty(self, params) -> float:
        return self.lam * sum(float(np.vdot(p.value, p.value))
                              for name, p in params if name.endswith("weight"))

    def penalty_backward(self, params, weight: float = 1.0):
        if self.lam:
            for name, p in params:
                if name.endswith("weight"):
                    p.grad += p.value.dtype.type(2 * self.lam * weight) * p.value

    def config(self) -> dict:
        return {"lam": self.lam, **super().config()}


class PerceptronCriterion(Hinge):
    """max(0, -y y_hat): zero once every sample is on its side (the perceptron's loss)."""

    type_name = "Perceptron"
    margin = 0.0

    def __init__(self, reduction: str = "mean"):
        super().__init__(0.0, reduction)

    def config(self) -> dict:
        return {"reduction": self.reduction}


LOSSES = {cls.type_name: cls for cls in (CrossEntropy, MSE, Logistic, Hinge, PerceptronCriterion)}


@hookimpl
def nnumba_register_losses():
    return dict(LOSSES)
