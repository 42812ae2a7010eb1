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
        """The reduced loss of a batch; keeps the gradient for :meth:`backward`.

        Predictions on the GPU (a CUDA device array) keep the gradient there too."""
        if not isinstance(y_hat, np.ndarray) and _on_device(y_hat):
            return self._forward_device(y_hat, y)
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
            if not isinstance(self._grad, np.ndarray):  # on the GPU
                from .kernels.cuda.arrays import scale
                out = self._device_scratch("weighted", self._grad.shape, self._grad.dtype)
                scale(self._grad.reshape(self._grad.size), weight, out.reshape(out.size))
                return out
            return self._grad * self._grad.dtype.type(weight)
        return self._grad

    # ---- on the GPU ----------------------------------------------------------------
    def _compute_cuda(self, y_hat, y, scale):
        """Like _compute on device arrays; losses without CUDA kernels leave it."""
        raise NotImplementedError

    def _forward_device(self, y_hat, y) -> float:
        from .device import is_device_array
        if type(self)._compute_cuda is Loss._compute_cuda:
            raise DTypeError(f"{self.type_name} loss has no CUDA kernel: compute it on the "
                             f"CPU (copy the predictions to the host), or use CrossEntropy, "
                             f"MSE, Logistic, Hinge or Perceptron")
        if y_hat.dtype not in (np.float32, np.float64):
            raise DTypeError(f"{self.type_name} loss: expected float32 or float64 "
                             f"predictions, got {y_hat.dtype}")
        if y_hat.ndim == 0 or y_hat.shape[0] == 0:
            raise ShapeError(f"{self.type_name} loss: got an empty batch (shape {y_hat.shape})")
        if not is_device_array(y):
            y = np.asarray(y)
        if y.shape[:1] != y_hat.shape[:1]:
            raise LabelError(f"{self.type_name} loss: {y_hat.shape[0]} predictions but "
                             f"{y.shape[0] if y.ndim else 'scalar'} targets")
        n = y_hat.shape[0]
        scale = np.dtype(y_hat.dtype).type(1.0 / n if self.reduction == "mean" else 1.0)
        losses, self._grad = self._compute_cuda(y_hat, y, scale)
        values = losses.copy_to_host()  # N numbers: the one sync of the step
        total = values.sum(dtype=np.float64)
        if not np.isfinite(total):
            self._check_labels_after_nan(y, values)
        return float(total / n if self.reduction == "mean" else total)

    def _check_labels_after_nan(self, y, values):
        """A NaN loss may be a label the kernel refused: say so clearly if it was."""

    def _device_scratch(self, key, shape, dtype):
        """A device array kept for the next batch of the same shape (trainers use the
        gradient before the next forward, as with a layer's reused buffers)."""
        from .device import CUDA
        bufs = self.__dict__.setdefault("_device_bufs", {})
        buf = bufs.get(key)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != np.dtype(dtype):
            buf = bufs[key] = CUDA.empty(tuple(shape), dtype)
        return buf

    def _device_labels(self, y, dtype):
        """Targets as a device array of ``dtype``: a host array is checked, then copied."""
        from .device import is_device_array
        if is_device_array(y):
            if y.dtype != np.dtype(dtype) or not y.is_c_contiguous():
                raise LabelError(f"{self.type_name} loss: expected device targets of dtype "
                                 f"{np.dtype(dtype).name}, C-contiguous, got {y.dtype}")
            return y
        buf = self._device_scratch("labels", y.shape, dtype)
        buf.copy_to_device(np.ascontiguousarray(y, dtype=dtype))
        return buf

    def penalty(self, params) -> float:
        """A term on the parameters (e.g. the SVM's lambda ||w||^2); none by default."""
        return 0.0

    def penalty_backward(self, params, weight: float = 1.0):
        """Accumulate the penalty's gradient into the parameters' gradients."""

    def config(self) -> dict:
        return {"reduction": self.reduction}

    def __repr__(self):
        return f"{self.type_name}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


def _on_device(a) -> bool:
    from .device import is_device_array
    return is_device_array(a)


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

    device_target_dtype = "int64"  # trainers copy the labels to the GPU as int64

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

    def _compute_cuda(self, z, y, scale):
        from .kernels.cuda import losses as kc
        if z.ndim != 2:
            raise ShapeError(f"CrossEntropy loss: expected logits of shape (N, C), got {z.shape}")
        if y.ndim != 1 or np.dtype(y.dtype).kind not in "iu":
            raise LabelError(f"CrossEntropy loss: expected integer class labels of shape "
                             f"(N,), got {np.dtype(y.dtype).name} of shape {y.shape}")
        if isinstance(y, np.ndarray) and (y.min() < 0 or y.max() >= z.shape[1]):
            raise LabelError(f"CrossEntropy loss: labels must lie in [0, {z.shape[1]}), "
                             f"got values from {y.min()} to {y.max()}")
        labels = self._device_labels(y, np.int64)  # device labels: the kernel guards them
        losses = self._device_scratch("losses", (z.shape[0],), z.dtype)
        grad = self._device_scratch("grad", z.shape, z.dtype)
        kc.softmax_cross_entropy(z, labels, scale, losses, grad)
        self._classes = z.shape[1]
        return losses, grad

    def _check_labels_after_nan(self, y, values):
        from .device import to_host
        labels = to_host(y)
        bad = (labels < 0) | (labels >= self._classes)
        if bad.any():
            raise LabelError(f"CrossEntropy loss: labels must lie in [0, {self._classes}), "
                             f"got values from {labels.min()} to {labels.max()}")


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

    def _compute_cuda(self, y_hat, y, scale):
        from .kernels.cuda import losses as kc
        if y.shape != y_hat.shape:
            raise ShapeError(f"MSE loss: targets of shape {y.shape} do not match "
                             f"predictions of shape {y_hat.shape}")
        shape = y_hat.shape
        k = y_hat.size // shape[0]
        if self.reduction == "mean":
            scale = scale / np.dtype(y_hat.dtype).type(k)
        targets = self._device_labels(y, y_hat.dtype)
        losses = self._device_scratch("losses", (shape[0],), y_hat.dtype)
        grad = self._device_scratch("grad", shape, y_hat.dtype)
        kc.squared_error(y_hat.reshape(shape[0], k), targets.reshape(shape[0], k), scale,
                         losses, grad.reshape(shape[0], k))
        self._per_sample_divisor = k if self.reduction == "mean" else 1
        return losses, grad

    def _forward_device(self, y_hat, y):
        value = super()._forward_device(y_hat, y)
        return value / self._per_sample_divisor  # the CPU path's losses / k


def _pm_one_device(loss, y_hat, y):
    """Device twin of _pm_one_labels: flat predictions and {-1, +1} targets."""
    if y_hat.ndim == 2 and y_hat.shape[1] == 1:
        y_hat = y_hat.reshape(y_hat.shape[0])
    if y_hat.ndim != 1:
        raise ShapeError(f"{loss.type_name} loss: expected predictions of shape (N,) or "
                         f"(N, 1), got {y_hat.shape}")
    if isinstance(y, np.ndarray):
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        if y.ndim != 1 or not np.isin(y, (-1, 1)).all():
            raise LabelError(f"{loss.type_name} loss: labels must be -1 or +1 "
                             f"(got values {np.unique(y)[:5].tolist()} ...)")
    elif y.shape != y_hat.shape:
        raise LabelError(f"{loss.type_name} loss: device labels of shape {y.shape} for "
                         f"predictions of shape {y_hat.shape}")
    return y_hat, loss._device_labels(y, y_hat.dtype)


class Logistic(Loss):
    """The lecture's logistic loss -log sigmoid(y (w.x + b)) for labels in {-1, +1}."""

    def _compute(self, y_hat, y, scale):
        shape = y_hat.shape
        flat, labels = _pm_one_labels(self, y_hat, y)
        losses = np.empty(flat.shape[0], flat.dtype)
        grad = np.empty_like(flat)
        kernels.logistic(flat, labels, scale, losses, grad)
        return losses, grad.reshape(shape)

    def _compute_cuda(self, y_hat, y, scale):
        from .kernels.cuda import losses as kc
        flat, labels = _pm_one_device(self, y_hat, y)
        losses = self._device_scratch("losses", flat.shape, flat.dtype)
        grad = self._device_scratch("grad", y_hat.shape, flat.dtype)
        kc.logistic(flat, labels, scale, losses, grad.reshape(flat.size))
        return losses, grad


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

    def _compute_cuda(self, y_hat, y, scale):
        from .kernels.cuda import losses as kc
        flat, labels = _pm_one_device(self, y_hat, y)
        losses = self._device_scratch("losses", flat.shape, flat.dtype)
        grad = self._device_scratch("grad", y_hat.shape, flat.dtype)
        kc.hinge(flat, labels, np.dtype(flat.dtype).type(self.margin), scale, losses,
                 grad.reshape(flat.size))
        return losses, grad

    def penalty(self, params) -> float:
        if params and not isinstance(params[0][1].value, np.ndarray):
            return self._device_penalty()
        return self.lam * sum(float(np.vdot(p.value, p.value))
                              for name, p in params if name.endswith("weight"))

    def _device_penalty(self) -> float:
        if self.lam:
            from .device import DeviceError
            raise DeviceError(f"{self.type_name} loss: the weight penalty (lam={self.lam}) "
                              f"runs on the CPU only; train on the CPU or use lam=0")
        return 0.0

    def penalty_backward(self, params, weight: float = 1.0):
        if self.lam and params and not isinstance(params[0][1].value, np.ndarray):
            self._device_penalty()
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
