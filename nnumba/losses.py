"""Losses: a value and its gradient with respect to the prediction.

Every loss reduces its per-sample losses by their mean (default, as PyTorch) or
their sum (the lecture's sums over samples), and registers through the same
plugin hook a third party would use.

The contract for a loss author (a subclass of :class:`Loss`):

- ``_compute(y_hat, y, scale)`` returns ``(losses, dl_dyhat)``: the per-sample
  losses, shape (N,), and the gradient of ``scale * sum(losses)`` with respect to
  ``y_hat``, of ``y_hat``'s device, shape and dtype (``scale`` is 1/N for a mean
  and 1 for a sum, so that it is the reduced loss's gradient; gradient descent
  weights a batch afterwards, through ``backward(weight)``).  ``y_hat`` is a
  C-contiguous float array of the predictions' device, batch first; ``y`` is a
  host array or one of that device.  Compute with ``self.kernels`` into arrays
  from ``self._scratch`` and check the targets ``y`` with a clear
  :class:`~nnumba.errors.LabelError` / ``ShapeError`` before a kernel reads them;
  ``self._targets(y, dtype)`` puts host targets on the device.  A formula the
  kernel set lacks can be computed with numpy on ``to_host`` copies, the gradient
  returned through ``self.device.to_device`` (docs/plugins.md has an example).
- a constructor whose arguments are the loss's configuration, with ``config()``
  returning them (``{**super().config(), "lam": self.lam}``), so that the loss can
  be rebuilt by name (unlike a layer's, they are not recorded automatically);
- ``target_dtype``: ``"int64"`` for class labels, else None (the model's float
  dtype): the dtype trainers give the targets on the device;
- ``examples``: ``[(kwargs, prediction shape, "classes" | "signs" | "values")]``
  for the conformance kit;
- optionally ``penalty(params)`` / ``penalty_backward(params, weight)`` for a term on
  the parameters (the SVM's lambda ||w||^2).

``nnumba.testing.check_loss`` checks a loss against finite differences.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from . import registry
from .device import CPU, device_of, to_host
from .errors import (ContractError, DTypeError, LabelError, NnumbaError, NoGradientError,
                     NonFiniteError, ShapeError, SpecError)
from .hookspecs import hookimpl
from .layers.fitting import check_not_fitting
from .layers.validation import non_finite, number, show, unmasked

REDUCTIONS = ("mean", "sum")


def _described(a) -> str:
    return f"{type(a).__name__} {getattr(a, 'dtype', '')} {getattr(a, 'shape', '')}"


class Loss:
    """Base class; see the module docstring for what a subclass implements."""

    type_name: ClassVar[str] = ""
    #: the dtype trainers give the targets on a device (None: the model's float dtype)
    target_dtype: ClassVar[str | None] = None
    #: [(constructor kwargs, prediction shape, target kind)] for the conformance kit
    examples: ClassVar[list] = []
    #: backward may return the same array every batch (trainers set it during fit)
    reuse_buffers = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("type_name"):
            cls.type_name = cls.__name__

    def __init__(self, reduction: str = "mean"):
        if not isinstance(reduction, str) or reduction not in REDUCTIONS:
            raise SpecError(f"{self.type_name}: reduction must be one of {REDUCTIONS}, "
                            f"got {show(reduction)}")
        self.reduction = reduction
        self.device = CPU
        self._grad = None

    @property
    def kernels(self):
        return self.device.kernels

    def forward(self, y_hat, y) -> float:
        """The reduced loss of a batch of predictions (an array of any device: the
        loss computes there); keeps the gradient for :meth:`backward`."""
        check_not_fitting(self, f"this {self.type_name} loss")
        y_hat = unmasked(f"{self.type_name} loss", y_hat, "predictions")
        device = device_of(y_hat)
        if device is None or np.dtype(y_hat.dtype) not in (np.float32, np.float64):
            raise DTypeError(f"{self.type_name} loss: expected predictions as a float32 or "
                             f"float64 array, got {getattr(y_hat, 'dtype', type(y_hat))}")
        if y_hat.ndim == 0 or y_hat.size == 0:  # no sample, or no output per sample
            raise ShapeError(f"{self.type_name} loss: got no predictions (an empty batch or "
                             f"no output per sample: shape {y_hat.shape})")
        if device_of(y) is None:
            try:  # a ragged list has no array; numpy says so with a bare ValueError
                y = np.asarray(y)
            except (ValueError, TypeError) as exc:
                raise LabelError(f"{self.type_name} loss: targets must form an array, one row "
                                 f"per sample ({str(exc).split('.')[0]})") from None
        y = unmasked(f"{self.type_name} loss", y, "targets")
        if y.shape[:1] != y_hat.shape[:1]:
            raise LabelError(f"{self.type_name} loss: {y_hat.shape[0]} predictions but "
                             f"{y.shape[0] if y.ndim else 'scalar'} targets")
        if isinstance(y, np.ndarray):
            check_targets(self.type_name, y)
        self.device = device
        n = y_hat.shape[0]
        scale = np.dtype(y_hat.dtype).type(1.0 / n if self.reduction == "mean" else 1.0)
        out = self._compute(self._contiguous(device, y_hat, "predictions"), y, scale)
        if not (isinstance(out, tuple) and len(out) == 2):  # a forgotten return, say
            raise self._broken(f"_compute returned {show(out)}, not (per-sample losses, "
                               f"gradient)")
        losses, grad = out
        if not device.owns(grad) or grad.shape != y_hat.shape or grad.dtype != y_hat.dtype:
            # else the model's last layer is blamed for it, in backward
            raise self._broken(f"_compute returned the gradient as a {_described(grad)}, not "
                               f"an array of the predictions' device ({device.name}), shape "
                               f"{y_hat.shape} and dtype {np.dtype(y_hat.dtype).name}")
        # else a loss of the wrong length came out silently wrong
        if not (isinstance(losses, np.ndarray) or device.owns(losses)) or \
                getattr(losses, "shape", None) != (n,) or np.dtype(losses.dtype).kind != "f":
            raise self._broken(f"_compute returned the per-sample losses as a "
                               f"{_described(losses)}, not a float array of shape ({n},), "
                               f"numpy's or the predictions' device's ({device.name})")
        self._grad = grad
        total = to_host(losses).sum(dtype=np.float64)  # N numbers: the step's one sync
        if not np.isfinite(total):
            self._check_targets_after_nonfinite(y)
        return float(total / n if self.reduction == "mean" else total)

    __call__ = forward

    def _broken(self, message: str) -> ContractError:
        """The error for a _compute that breaks the contract: the bug of the plugin
        that registered this loss, which the command line names (status 1)."""
        from .registry import get_registry
        error, registry = ContractError(f"{self.type_name} loss: {message}"), get_registry()
        name = registry.name_of("loss", type(self))
        entry = None if name is None else registry.entry("loss", name)
        error.plugin = None if entry is None or entry.builtin else entry.plugin
        return error

    def backward(self, weight: float = 1.0):
        """dl/dy_hat of ``weight * loss`` for the last batch given to forward(): a new
        array, or with ``reuse_buffers`` (trainers) one the next forward overwrites."""
        if self._grad is None:
            raise NoGradientError(f"{self.type_name} loss: backward() called before forward()")
        # None gave a NaN gradient; 1e39 an infinite one in float32
        top = float(np.finfo(self._grad.dtype).max)
        weight = number(f"{self.type_name} loss", "backward's weight", weight, -top, top)
        if weight == 1.0 and self.reuse_buffers:
            return self._grad
        out = self._scratch("weighted", self._grad.shape, self._grad.dtype) \
            if self.reuse_buffers else self.device.empty(self._grad.shape, self._grad.dtype)
        self.kernels.scale(self._grad.reshape(self._grad.size), weight, out.reshape(out.size))
        return out

    def _compute(self, y_hat, y, scale):
        raise NotImplementedError

    def _check_targets_after_nonfinite(self, y):
        """A non-finite loss may come from targets a device kernel refused: say so.
        By default device targets holding NaN or infinity (host targets were checked
        before the kernel): else MSE on a device returned NaN as the loss."""
        if not isinstance(y, np.ndarray):
            check_targets(self.type_name, to_host(y))

    # ---- arrays on the predictions' device -------------------------------------------
    def _scratch(self, key, shape, dtype):
        """An array of the current device, kept for the next batch of the same shape
        (trainers use a gradient before the next forward, as a layer's buffers)."""
        bufs = self.__dict__.setdefault("_bufs", {})
        key = (key, self.device.name)
        buf = bufs.get(key)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != np.dtype(dtype):
            buf = bufs[key] = self.device.empty(tuple(shape), dtype)
        return buf

    def _outputs(self, y_hat):
        """(per-sample losses, gradient): arrays for a batch of predictions ``y_hat``."""
        return (self._scratch("losses", (y_hat.shape[0],), y_hat.dtype),
                self._scratch("grad", y_hat.shape, y_hat.dtype))

    def _targets(self, y, dtype):
        """Targets as a C-contiguous array of ``dtype`` on the current device: host
        targets are converted (and copied over); device targets must have it."""
        if not isinstance(y, np.ndarray):
            if not self.device.owns(y):
                raise LabelError(f"{self.type_name} loss: targets on "
                                 f"{getattr(device_of(y), 'name', type(y).__name__)}, "
                                 f"predictions on {self.device.name}")
            if np.dtype(y.dtype) != np.dtype(dtype):
                raise LabelError(f"{self.type_name} loss: expected targets of dtype "
                                 f"{np.dtype(dtype).name}, got {np.dtype(y.dtype).name}")
            return self._contiguous(self.device, y, "targets")
        dtype = np.dtype(dtype)
        if y.dtype.kind == "f" and dtype.kind == "f" and y.dtype.itemsize > dtype.itemsize \
                and y.size and np.abs(y).max() > np.finfo(dtype).max:  # inf after the cast
            raise NonFiniteError(f"{self.type_name} loss: targets as large as "
                                 f"{np.abs(y).max():.4g} do not fit the predictions' "
                                 f"{dtype.name} (at most {float(np.finfo(dtype).max):.4g})")
        host = np.ascontiguousarray(y, dtype=dtype)
        if self.device is CPU:
            return host
        buf = self._scratch("targets", host.shape, dtype)
        buf.copy_to_device(host)
        return buf

    def _contiguous(self, device, a, what):
        """``a`` C-contiguous on ``device``, or ShapeError naming the loss and ``what``
        (a strided CUDA array: the device's message alone named neither)."""
        try:
            return device.contiguous(a)
        except NnumbaError as exc:
            raise ShapeError(f"{self.type_name} loss: {what}: {exc}") from None

    # ---- a term on the parameters ---------------------------------------------------------
    def penalty(self, params) -> float:
        """A term on the parameters (e.g. the SVM's lambda ||w||^2); none by default."""
        return 0.0

    def penalty_backward(self, params, weight: float = 1.0):
        """Add the penalty's gradient into the parameters' gradients."""

    def config(self) -> dict:
        return {"reduction": self.reduction}

    def __repr__(self):
        return f"{self.type_name}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


def check_targets(owner: str, y: np.ndarray):
    """Refuse host targets that are not real numbers, or not finite: a kernel cannot
    read object arrays, complex ones would lose their imaginary part, and NaN would
    give a NaN loss that trainers blame on the learning rate."""
    kind = y.dtype.kind
    if kind not in "biuf":
        hint = {"O": ": convert with y.astype(int) or y.astype(float)",
                "c": ": the imaginary part would be lost",
                **dict.fromkeys("US", ": class names? number them 0, 1, ...")}.get(kind, "")
        raise LabelError(f"{owner} loss: targets must be real numbers (bool, integer or "
                         f"float), got dtype {y.dtype}{hint}")
    found = non_finite(y)  # y is a batch: (N, ...)
    if found:
        raise NonFiniteError(f"{owner} loss: targets hold {found}")


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits (N, C) and integer class labels (N,)."""

    target_dtype = "int64"
    examples = [({}, (5, 4), "classes"), ({"reduction": "sum"}, (3, 2), "classes")]

    def _compute(self, z, y, scale):
        if z.ndim != 2:
            raise ShapeError(f"{self.type_name} loss: expected logits of shape (N, C), got {z.shape}")
        if y.ndim != 1 or np.dtype(y.dtype).kind not in "iu":
            raise LabelError(f"{self.type_name} loss: expected integer class labels of shape "
                             f"(N,), got {np.dtype(y.dtype).name} of shape {y.shape}")
        self._classes = z.shape[1]
        if isinstance(y, np.ndarray):  # host labels now; device ones only after the kernel
            self._check_targets_after_nonfinite(y)
        labels = self._targets(y, np.int64)
        losses, grad = self._outputs(z)
        self.kernels.softmax_cross_entropy(z, labels, scale, losses, grad)
        return losses, grad

    def _check_targets_after_nonfinite(self, y):
        labels = to_host(y)
        if labels.min() < 0 or labels.max() >= self._classes:
            raise LabelError(f"{self.type_name} loss: labels must lie in [0, {self._classes}), "
                             f"got values from {labels.min()} to {labels.max()}")


class MSE(Loss):
    """Squared error: per sample ||y_hat - y||^2 with ``sum``; with ``mean`` its mean
    over the K outputs, so that the batch's loss divides by N*K as PyTorch's does."""

    examples = [({}, (4, 3), "values"), ({"reduction": "sum"}, (3, 2, 2), "values")]

    def _compute(self, y_hat, y, scale):
        if y.shape != y_hat.shape:
            raise ShapeError(f"{self.type_name} loss: targets of shape {y.shape} do not match "
                             f"predictions of shape {y_hat.shape}")
        n = y_hat.shape[0]
        k = y_hat.size // n
        if self.reduction == "mean":
            scale = scale / np.dtype(y_hat.dtype).type(k)
        targets = self._targets(y, y_hat.dtype)
        losses, grad = self._outputs(y_hat)
        self.kernels.squared_error(y_hat.reshape(n, k), targets.reshape(n, k), scale, losses,
                                   grad.reshape(n, k))
        if self.reduction == "mean":  # the mean over the K outputs of each sample
            self.kernels.scale(losses, 1.0 / k, losses)
        return losses, grad


def _pm_one(loss: Loss, y_hat, y):
    """Predictions (N,) or (N, 1) and targets in {-1, +1}, as flat arrays of the
    predictions' dtype on their device."""
    y_hat, y = (a.reshape(a.shape[0]) if a.ndim == 2 and a.shape[1] == 1 else a  # (N, 1) as (N,)
                for a in (y_hat, y))
    if y_hat.ndim != 1:
        raise ShapeError(f"{loss.type_name} loss: expected predictions of shape (N,) or "
                         f"(N, 1), got {y_hat.shape}")
    if y.shape != y_hat.shape:
        raise LabelError(f"{loss.type_name} loss: targets of shape {y.shape} for predictions "
                         f"of shape {y_hat.shape}")
    if isinstance(y, np.ndarray):  # host labels now; device ones only after the kernel
        _check_signs(loss, y)
    return y_hat, loss._targets(y, y_hat.dtype)


def _check_signs(loss: Loss, y):
    """LabelError for a label other than -1 or +1 (NonFiniteError for NaN or infinity,
    as host targets get): the kernel would give a NaN loss for it, which is how device
    targets are found."""
    labels = to_host(y)
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        check_targets(loss.type_name, labels)
    if not np.isin(labels, (-1, 1)).all():
        raise LabelError(f"{loss.type_name} loss: labels must be -1 or +1 (got values "
                         f"{np.unique(labels)[:5].tolist()} ...)")


class Logistic(Loss):
    """The lecture's logistic loss -log sigmoid(y (w.x + b)) for labels in {-1, +1}."""

    examples = [({}, (5,), "signs"), ({"reduction": "sum"}, (4, 1), "signs")]

    _check_targets_after_nonfinite = _check_signs

    def _compute(self, y_hat, y, scale):
        flat, labels = _pm_one(self, y_hat, y)
        losses, grad = self._outputs(y_hat)
        self.kernels.logistic(flat, labels, scale, losses, grad.reshape(flat.size))
        return losses, grad


class Hinge(Loss):
    """The lecture's SVM loss: lambda ||w||^2 + mean max(0, 1 - y (w.x + b)).

    The penalty is on every parameter named ``weight`` (biases are free), and
    the trainers add it once per step; lam > 0 on a model with none is refused."""

    margin = 1.0
    examples = [({}, (5,), "signs"), ({"lam": 0.1, "reduction": "sum"}, (4, 1), "signs")]

    def __init__(self, lam: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.lam = number(self.type_name, "lam", lam, 0.0)

    _check_targets_after_nonfinite = _check_signs

    def _compute(self, y_hat, y, scale):
        flat, labels = _pm_one(self, y_hat, y)
        losses, grad = self._outputs(y_hat)
        self.kernels.hinge(flat, labels, np.dtype(flat.dtype).type(self.margin), scale, losses,
                           grad.reshape(flat.size))
        return losses, grad

    def _weights(self, params):  # (state a layer keeps itself is no weight of the model)
        trainable = [(name, p) for name, p in params if getattr(p, "trainable", True)]
        weights = [p for name, p in trainable if name.endswith("weight")]
        if self.lam and not weights:  # else lam would silently train as lam = 0
            names = ", ".join(name for name, _ in trainable) or "none"
            raise SpecError(f"{self.type_name}: lam {self.lam:g} penalises the parameters "
                            f"named 'weight', and the model has none (its trainable "
                            f"parameters: {names}): use lam=0, or the trainer's "
                            f"weight_decay for an L2 penalty on every parameter")
        return weights

    def penalty(self, params) -> float:
        if not self.lam:
            return 0.0
        # summed in float64 (einsum converts in small buffers): float32 vdot's few
        # accumulators were 2e-4 off over AlexNet's 38M weights
        return self.lam * sum(float(np.einsum("i,i->", w, w, dtype=np.float64)) for w in
                               (to_host(p.value).reshape(-1) for p in self._weights(params)))

    def penalty_backward(self, params, weight: float = 1.0):
        if not self.lam:
            return
        for p in self._weights(params):
            top = float(np.finfo(p.value.dtype).max)
            if 2 * self.lam * weight > top:  # the gradient's scale: inf, then NaN weights
                raise SpecError(f"{self.type_name}: lam {self.lam:g} does not fit the model's "
                                f"{np.dtype(p.value.dtype).name} (2 lam at most {top:.4g})")
            device = device_of(p.value)
            term = device.empty(p.value.shape, p.value.dtype)
            device.kernels.scale(p.value.reshape(p.value.size), 2 * self.lam * weight,
                                 term.reshape(term.size))
            device.kernels.accumulate(p.grad.reshape(p.grad.size), term.reshape(term.size))

    def config(self) -> dict:
        return {"lam": self.lam, **super().config()}


class PerceptronCriterion(Hinge):
    """max(0, -y y_hat): zero once every sample is on its side (the perceptron's loss).
    At y y_hat = 0 its gradient is 0, as PyTorch's relu takes it (and Hinge's at its
    margin): from all-zero weights SGD does not move.  Start from the model's random
    weights, or train with ``train_perceptron``, the lecture's rule, which counts
    y y_hat <= 0 a mistake."""

    type_name = "Perceptron"
    margin = 0.0
    examples = [({}, (5,), "signs")]

    def __init__(self, reduction: str = "mean"):
        super().__init__(0.0, reduction)

    config = Loss.config  # no lam: it is always 0


LOSSES = {cls.type_name: cls for cls in (CrossEntropy, MSE, Logistic, Hinge, PerceptronCriterion)}
__all__ = ["Loss", "CrossEntropy", "MSE", "Logistic", "Hinge", "PerceptronCriterion", "REDUCTIONS",
           "check_targets"]  # (what help() lists)
registry.BASES["loss"] = Loss  # what every registered loss subclasses


nnumba_register_losses = hookimpl(lambda: dict(LOSSES))
