"""Checks that keep bad input away from the kernels, which do no bounds checking:
the arrays a layer is given, and the arguments it is built with.  Every error
says what was expected, what came, and which layer."""
from __future__ import annotations

import math

import numpy as np

from ..device import CPU
from ..errors import DTypeError, NonFiniteError, ShapeError, TooLargeError


# ---- arrays -------------------------------------------------------------------------

def check_array(layer, x, what: str):
    """``x`` as a C-contiguous array of the layer's device and dtype, or a clear error."""
    device = layer.device
    if not device.owns(x):
        kind = "a numpy array" if device.name == "cpu" else f"a {device.name} device array"
        hint = "" if device.name == "cpu" else \
            f" (move it with nnumba.device.to_device(x, {device.name!r}))"
        raise DTypeError(f"{layer.label} is on {device.name}: expected {what} as {kind} of "
                         f"{layer.dtype.name}, got {type(x).__name__}{hint}")
    if x.dtype != layer.dtype:
        raise DTypeError(f"{layer.label}: expected {what} of dtype {layer.dtype.name}, got "
                         f"{np.dtype(x.dtype).name} (convert with .astype(np.{layer.dtype.name}))")
    try:
        return device.contiguous(x)
    except Exception as exc:  # noqa: BLE001 - the device says why it cannot
        raise ShapeError(f"{layer.label}: {what}: {exc}") from None


def _fits(want, got) -> bool:
    return len(got) == len(want) and all(w is None or w == g for w, g in zip(want, got))


def pretty_shape(want) -> str:
    return ", ".join("*" if w is None else str(w) for w in want)


def check_input(layer, x, *, check_finite: bool = True):
    """``x`` ready for the layer's kernels, or a clear error unless it is a
    non-empty batch of the shape the layer accepts (and, with ``check_finite``,
    free of NaN and infinity)."""
    x = check_array(layer, x, "input")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ShapeError(f"{layer.label}: got an empty batch (shape {x.shape})")
    want = layer.input_shape()
    if want is not None and not _fits(want, x.shape[1:]):
        raise ShapeError(f"{layer.label}: expected input of shape (N, {pretty_shape(want)}), "
                         f"got {x.shape}")
    layer.output_shape(x.shape[1:])  # e.g. an input smaller than a kernel is refused here
    if check_finite and not layer.kernels.all_finite(x):
        raise NonFiniteError(f"{layer.label}: input holds NaN or infinity")
    return x


def check_gradient(layer, dl_dy, out_shape):
    """``dl_dy`` ready for ``_backward``: the shape of the last output, on the device."""
    if out_shape is None:
        raise RuntimeError(f"{layer.label}: backward() called before forward()")
    dl_dy = check_array(layer, dl_dy, "dl_dy")
    if dl_dy.shape != out_shape:
        raise ShapeError(f"{layer.label}: expected dl_dy of shape {out_shape} (the shape of "
                         f"the last output), got {dl_dy.shape}")
    return dl_dy


def check_fits(layer, input_shape, batch: int | None = None) -> None:
    """Raise ShapeError unless ``layer`` accepts per-sample ``input_shape`` (of a batch
    of ``batch``, when the message should show the batch)."""
    want = layer.input_shape()
    if want is not None and not _fits(want, tuple(input_shape)):
        if batch is not None:
            raise ShapeError(f"{layer.label}: expected input of shape "
                             f"(N, {pretty_shape(want)}), got {(batch,) + tuple(input_shape)}")
        raise ShapeError(f"{layer.label} expects per-sample input ({pretty_shape(want)}) but "
                         f"receives {tuple(input_shape)}")


# ---- constructor arguments -------------------------------------------------------------

def integer(owner: str, name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= minimum; floats (784.9, and 784.0 too), bools, None and
    strings are refused rather than rounded."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r} "
                         f"({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value}")
    return int(value)


def integer_pair(owner: str, name: str, value, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a pair."""
    items = list(value) if isinstance(value, (list, tuple)) else [value, value]
    if len(items) != 2:
        raise ValueError(f"{owner}: {name} must be an integer or a pair of integers, "
                         f"got {value!r}")
    return integer(owner, name, items[0], minimum), integer(owner, name, items[1], minimum)


def number(owner: str, name: str, value, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite real number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not low <= value <= high:
        bounds = f" in [{low}, {high}]" if math.isfinite(low) or math.isfinite(high) else ""
        raise ValueError(f"{owner}: {name} must be a finite number{bounds}, got {value!r}")
    return float(value)


def flag(owner: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be true or false, got {value!r}")
    return bool(value)


# ---- memory ----------------------------------------------------------------------------

def check_memory(what: str, nbytes: float):
    """Refuse, before trying, an allocation larger than the memory available."""
    available = CPU.free_memory()
    if nbytes > available:
        raise TooLargeError(f"{what} needs {nbytes / 1e9:,.1f} GB, more than the "
                            f"{available / 1e9:,.1f} GB of memory available")
