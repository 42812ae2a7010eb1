"""The checks a trainer runs on its data before the first step: the arrays against
the model, and the targets against the loss, so that a bad label is refused
before training rather than at its batch (or, in the test set, after an epoch)."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, LabelError, NonFiniteError, ShapeError
from ..layers.validation import dtype_text, unmasked


def check_data(model, x, y, what: str = "training"):
    """Clear errors for data that cannot go through ``model``, before any kernel runs."""
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise DTypeError(f"{what} inputs and targets must be numpy arrays")
    # the batches are gathered from the data under a mask: refuse masked values here
    unmasked(f"{what} set", x, "inputs")
    unmasked(f"{what} set", y, "targets")
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"{what} inputs and targets must hold one row per sample, got "
                         f"shapes {x.shape} and {y.shape}")
    if len(x) == 0:
        raise ShapeError(f"{what} set is empty")
    if len(x) != len(y):
        raise LabelError(f"{what} set has {len(x)} inputs but {len(y)} targets")
    if x.dtype != model.dtype:
        raise DTypeError(f"{what} inputs are {dtype_text(x.dtype, model.dtype)} but the model is "
                         f"{model.dtype.name}: convert with x.astype(np.{model.dtype.name})")
    try:
        model.output_shape(x.shape[1:])  # raises where the layers don't fit this input
    except ShapeError as exc:
        if what == "training":  # the layers' own words; a test set is named
            raise
        _raise_named(exc, f"{what} inputs")


def _raise_named(exc, what: str):
    """Raise ``exc`` again with ``what`` (which data) in front of its message."""
    try:
        named = type(exc)(f"{what}: {exc}")
    except Exception:  # noqa: BLE001 - a constructor of its own: keep the original
        raise exc from None
    raise named from None


def check_with_loss(model, loss, y, input_shape, what: str):
    """Let ``loss`` check every target (label range, -1/+1, shape) against predictions of
    the model's output shape, so that bad labels are refused before training rather than
    at their batch, or (test labels) after a whole epoch. Zeros stand for predictions,
    in chunks of at most 2**20 values (one chunk for MNIST's 60,000 labels)."""
    out_shape = model.output_shape(input_shape)
    chunk = max(1, 2**20 // max(1, int(np.prod(out_shape))))
    for start in range(0, len(y), chunk):
        part = y[start:start + chunk]
        try:
            loss.forward(model.device.zeros((len(part),) + tuple(out_shape), model.dtype), part)
        except (LabelError, ShapeError, DTypeError, NonFiniteError) as exc:  # of the targets
            _raise_named(exc, what)
