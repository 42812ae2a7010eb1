"""Checks that keep bad input away from the kernels, which do no bounds checking:
the arrays a layer is given, and the arguments it is built with.  Every error
says what was expected, what came, and which layer."""
from __future__ import annotations

import functools
import math
import reprlib
import threading

import numpy as np

from ..device import CPU
from ..errors import (ContractError, DTypeError, NoGradientError, NonFiniteError, ShapeError,
                      SpecError, TooLargeError)
from .fitting import check_not_fitting


# ---- arrays -------------------------------------------------------------------------

def check_array(layer, x, what: str):
    """``x`` as a C-contiguous array of the layer's device and dtype, or a clear error."""
    device = layer.device
    if not device.owns(x):
        kind = "a numpy array" if device.name == "cpu" else f"a {device.name} device array"
        hint = "" if device.name == "cpu" else \
            f" (move it with nnumba.device.to_device(x, {device.name!r}))"
        # a numpy scalar's type name alone reads as a dtype
        got = f"a {type(x).__name__}{' scalar' if isinstance(x, np.generic) else ''}"
        raise DTypeError(f"{layer.label} is on {device.name}: expected {what} as {kind} of "
                         f"{layer.dtype.name}, got {got}{hint}")
    x = check_batch(layer, x, what)
    try:
        return device.contiguous(x)
    except MemoryError as exc:  # the copy of a strided or broadcast view: no shape fault
        raise TooLargeError(f"{layer.label}: {what}: a C-contiguous copy of shape {x.shape} "
                            f"does not fit in memory ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - the device says why it cannot
        raise ShapeError(f"{layer.label}: {what}: {exc}") from None


def check_batch(layer, x, what: str):
    """``x`` (of any device) as a batch of the layer's dtype, its mask checked: also
    before a host batch goes to a device, whose copy drops a mask and any dtype."""
    x = unmasked(layer.label, x, what)
    if x.ndim == 0:  # (a contiguous copy would make it a batch of one)
        raise ShapeError(f"{layer.label}: expected {what} as a batch (N, ...), got a 0-d "
                         f"array {show(x)}")
    if x.dtype != layer.dtype:
        got = dtype_text(x.dtype, layer.dtype)
        raise DTypeError(f"{layer.label}: expected {what} of dtype {layer.dtype.name}, got "
                         f"{got} (convert with .astype(np.{layer.dtype.name}))")
    return x


def dtype_text(got, want) -> str:
    """``got``'s name, with its byte order where the name alone is ``want``'s ('>f4' is
    named float32 too)."""
    got = np.dtype(got)
    return f"{got.name} of byte order {got.str}" if got.name == np.dtype(want).name else got.name


def unmasked(owner: str, x, what: str):
    """``x``'s data, or DTypeError where ``x`` is a masked array with masked values:
    numpy would hand the kernels the values under the mask as data."""
    if isinstance(x, np.ma.MaskedArray):
        masked = int(np.ma.count_masked(x))
        if masked:
            raise DTypeError(f"{owner}: {what} is a masked array with {masked} masked "
                             f"value(s): fill them (x.filled(value)) or drop those samples")
        return np.ma.getdata(x)
    return x


def takes(func, nargs: int) -> bool:
    """Whether ``func`` can be called with ``nargs`` positional arguments (True where
    its signature cannot be read: a builtin, a C extension's callable)."""
    import inspect
    try:
        inspect.signature(func).bind(*range(nargs))
    except TypeError:
        return False
    except ValueError:  # no signature to read
        return True
    return True


def non_finite(a: np.ndarray) -> str | None:
    """For a float array of samples (N, ...): "K NaN or infinite value(s), the first in
    sample i", or None where every value is finite (or the array holds no floats)."""
    if a.dtype.kind != "f" or np.isfinite(a).all():
        return None
    bad = ~np.isfinite(a.reshape(len(a), -1))
    return (f"{int(bad.sum())} NaN or infinite value(s), the first in sample "
            f"{int(np.argwhere(bad)[0][0])}")


def _fits(want, got) -> bool:
    if want and want[-1] is Ellipsis:  # (C, ...): these axes first, then any number
        return len(got) >= len(want) - 1 and _fits(want[:-1], got[:len(want) - 1])
    return len(got) == len(want) and all(w is None or w == g for w, g in zip(want, got))


def pretty_shape(want) -> str:
    return ", ".join("*" if w is None else "..." if w is Ellipsis else str(w) for w in want)


def check_input(layer, x, *, check_finite: bool = True):
    """``x`` ready for the layer's kernels, or a clear error unless it is a
    non-empty batch of non-empty samples of the shape the layer accepts (and, with
    ``check_finite``, free of NaN and infinity)."""
    x = check_array(layer, x, "input")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ShapeError(f"{layer.label}: got an empty batch (shape {x.shape})")
    if x.size == 0:  # an axis of any size (None) at 0: a kernel would index past it
        raise ShapeError(f"{layer.label}: got samples that hold no values (shape {x.shape}: "
                         f"an axis of size 0)")
    check_fits(layer, x.shape[1:], x.shape[0])
    layer.output_shape(x.shape[1:])  # e.g. an input smaller than a kernel is refused here
    if flag(layer.label, "check_finite", check_finite) and not _all_finite(layer, x):
        raise NonFiniteError(f"{layer.label}: input holds NaN or infinity")
    return x


def _all_finite(layer, x) -> bool:
    """The kernel set's all_finite: the one kernel whose result nnumba reads."""
    found = layer.kernels.all_finite(x)
    if not isinstance(found, (bool, np.bool_)):  # else None reads as "holds NaN"
        raise layer.device.plugin_error(f"{layer.device.name} kernel set: all_finite "
                                        f"returned {show(found)}, not a bool", ContractError)
    return bool(found)


def check_gradient(layer, dl_dy, out_shape):
    """``dl_dy`` ready for ``_backward``: the shape of the last output, on the device."""
    if out_shape is None:
        hint = ("" if getattr(type(layer).forward, "__qualname__", "") == "Layer.forward" else
                f" ({type(layer).__name__} overrides forward(): implement _forward(x) "
                f"instead, which forward() calls after checking x)")
        raise NoGradientError(f"{layer.label}: backward() called before forward() (a copy "
                              f"keeps none of the original's){hint}")
    dl_dy = check_array(layer, dl_dy, "dl_dy")
    if dl_dy.shape != out_shape:
        raise ShapeError(f"{layer.label}: expected dl_dy of shape {out_shape} (the shape of "
                         f"the last output), got {dl_dy.shape}")
    return dl_dy


def check_fits(layer, input_shape, batch: int | None = None) -> None:
    """Raise ShapeError unless ``layer`` accepts per-sample ``input_shape`` (of a batch
    of ``batch``, when the message should show the batch)."""
    want = layer.input_shape()
    if want is not None and (not isinstance(want, (tuple, list)) or
                             not _fits_any(want, tuple(input_shape))):
        _check_declared(layer, want)  # only here: a declaration that fits costs nothing
        if batch is not None:
            raise ShapeError(f"{layer.label}: expected input of shape "
                             f"(N, {pretty_shape(want)}), got {(batch,) + tuple(input_shape)}")
        raise ShapeError(f"{layer.label} expects per-sample input ({pretty_shape(want)}) but "
                         f"receives {tuple(input_shape)}")


def _fits_any(want, got) -> bool:
    try:
        return _fits(want, got)
    except (TypeError, ValueError):  # an item no size is: _check_declared says so
        return False


def declared_input_shape(layer):
    """``layer.input_shape()``, checked against the contract (a ContractError naming
    the layer), with its sizes as ints: None, or a tuple of ints, None and a last ...."""
    want = layer.input_shape()
    if want is None:
        return None
    _check_declared(layer, want)
    return tuple(w if w is None or w is Ellipsis else int(w) for w in want)


def compile_unit_of(layer, input_shape) -> tuple[tuple, float]:
    """``layer.compile_unit(input_shape)`` as (key, seconds), or a ContractError naming
    the layer: fit's precompilation unpacked a bare number with a TypeError."""
    unit = layer.compile_unit(input_shape)
    try:
        key, seconds = unit
        ok = isinstance(key, tuple) and len(key) > 0 and hash(key) is not None and \
            isinstance(seconds, (int, float, np.integer, np.floating)) and \
            not isinstance(seconds, bool) and math.isfinite(seconds) and seconds >= 0
    except (TypeError, ValueError):  # no pair, or a key of lists (unhashable)
        ok = False
    if not ok:
        raise ContractError(f"{layer.label}: compile_unit({input_shape}) returned {show(unit)}; "
                            f"it returns (key, seconds): a non-empty tuple naming the kernels "
                            f"it runs (layers with equal keys share them) and the seconds "
                            f"they take to compile cold")
    return key, float(seconds)


def _check_declared(layer, want) -> None:
    """ContractError where ``input_shape()`` is no tuple of sizes, None and a last ``...``:
    ``(..., D)`` refused every input, saying "expected (N, ..., 4), got (2, 3, 4)"."""
    ok = isinstance(want, (tuple, list)) and all(
        w is None or (w is Ellipsis and i == len(want) - 1) or
        (isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 0)
        for i, w in enumerate(want))
    if not ok:
        raise ContractError(f"{layer.label}: input_shape() returned {show(want)}; it returns "
                            f"None (any shape) or a tuple of sizes, None for an axis of any "
                            f"size, and ... only last (C, ...). A layer over the last axis "
                            f"returns None and refuses other widths in output_shape")


# ---- constructor arguments -------------------------------------------------------------
# A bad argument raises SpecError (a ValueError): it is what makes a spec item
# unbuildable, and Sequential.from_spec adds which item it was.

#: the largest size numpy can index; beyond it no array can exist, and a product of a
#: few such sizes would overflow the float the memory check computes in
MAX_SIZE = 2**63 - 1

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlevel = 3


def encodable(text: str) -> bool:
    """False for text with a lone surrogate ("\\ud800": valid JSON, and a numpy str),
    which no file or terminal can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str, lines: bool = False) -> str:
    """``text`` on one line (with ``lines``, its line breaks kept), its control and
    format characters written as escapes: a file or class name's ESC or
    right-to-left mark would drive the terminal."""
    return "".join(c if c.isprintable() or (lines and c == "\n") else ascii(c)[1:-1]
                   for c in text)


def show(value) -> str:
    """``value`` for an error message: short, whatever it is (a 1 MB string, JSON
    nested deep, an integer of thousands of digits, which repr() refuses)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        return _repr.repr(value)
    except (ValueError, RecursionError):  # an enormous int inside a list, ...
        return f"a {type(value).__name__}"


FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(owner: str, dtype) -> np.dtype:
    """float32 or float64, from a dtype, its name or a type; DTypeError for anything
    else, None included (which numpy would read as float64)."""
    try:
        got = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        got = None
    if got is None or got not in FLOAT_DTYPES:
        order = " in native byte order" if got is not None and got.kind == "f" \
            and got.newbyteorder("=") in FLOAT_DTYPES else ""
        raise DTypeError(f"{owner}: dtype must be float32 or float64{order}, got "
                         f"{show(dtype)}")
    return got


def integer(owner: str, name: str, value, minimum: int = 1, maximum: int | None = MAX_SIZE) -> int:
    """``value`` as an int in [minimum, maximum]; floats (784.9, and 784.0 too), bools,
    None and strings are refused rather than rounded. Past the default maximum it is a
    TooLargeError (no array can have that size); past a caller's own (None: no
    limit, e.g. for seeds), a SpecError naming the range."""
    wanted = f">= {minimum}" if maximum in (None, MAX_SIZE) else f"in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SpecError(f"{owner}: {name} must be an integer {wanted}, got {show(value)} "
                        f"({type(value).__name__})")
    if value < minimum or (maximum not in (None, MAX_SIZE) and value > maximum):
        raise SpecError(f"{owner}: {name} must be an integer {wanted}, got {show(value)}")
    if maximum is not None and value > maximum:
        raise TooLargeError(f"{owner}: {name} is {show(value)}, more than any array can hold "
                            f"(at most {maximum:,})")
    return int(value)


def integer_pair(owner: str, name: str, value, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a pair."""
    return integer_tuple(owner, name, value, 2, minimum)


def integer_tuple(owner: str, name: str, value, size: int, minimum: int = 1) -> tuple:
    """An int or ``size`` ints (a list or tuple), each >= minimum, as a tuple of ``size``."""
    items = list(value) if isinstance(value, (list, tuple)) else [value] * size
    if len(items) != size:
        what = "a pair of integers" if size == 2 else f"a list of {size} integers"
        raise SpecError(f"{owner}: {name} must be an integer or {what}, "
                        f"got {show(value)}")
    return tuple(integer(owner, name, item, minimum) for item in items)


def number(owner: str, name: str, value, low: float | None = -math.inf,
           high: float | None = math.inf, *, above: float | None = None,
           below: float | None = None) -> float:
    """A finite real number in [low, high], greater than ``above`` and less than
    ``below`` where given (an epsilon: ``above=0``; a dropout's p: ``below=1``); None
    for a bound is no bound (as integer's)."""
    low = -math.inf if low is None else low
    high = math.inf if high is None else high
    try:  # float() refuses an int too large for a float (10**400)
        ok = not isinstance(value, bool) and \
            isinstance(value, (int, float, np.integer, np.floating)) and \
            math.isfinite(float(value)) and low <= float(value) <= high and \
            (above is None or float(value) > above) and \
            (below is None or float(value) < below)  # not in value's dtype
    except OverflowError:
        ok = False
    if not ok:  # (a bound the strict one implies goes unsaid: "> 0", not "> 0 and >= 0")
        low = -math.inf if above is not None and above >= low else low
        high = math.inf if below is not None and below <= high else high
        bounds = "" if not (math.isfinite(low) or math.isfinite(high)) else \
            f" >= {low}" if not math.isfinite(high) else f" <= {high}" if not \
            math.isfinite(low) else f" in [{low}, {high}]"
        strict = [f" {sign} {b}" for sign, b in ((">", above), ("<", below)) if b is not None]
        bounds = " and".join(strict + [bounds] if bounds else strict)
        raise SpecError(f"{owner}: {name} must be a finite number{bounds}, got {show(value)}")
    return float(value)


def check_cast(owner: str, what: str, value, dtype, fix: str | None = None) -> None:
    """NonFiniteError where casting float array ``value`` to the narrower float ``dtype``
    would make values infinite (float64 weights of 1e100 as float32); ``fix`` ends the
    message (default: keep it in its own dtype)."""
    dtype = np.dtype(dtype)
    if value.dtype.kind != "f" or value.dtype.itemsize <= dtype.itemsize or not value.size:
        return
    top = float(np.finfo(dtype).max)
    largest = float(np.abs(value).max())
    if largest > top:
        raise NonFiniteError(f"{owner}: {what} holds values as large as {largest:.4g}, beyond "
                             f"{dtype.name}'s range (at most {top:.4g}): "
                             f"{fix or f'keep it in {value.dtype.name}'}")


def flag(owner: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise SpecError(f"{owner}: {name} must be true or false, got {show(value)}")
    return bool(value)


# ---- memory ----------------------------------------------------------------------------

def check_memory(what: str, nbytes: float):
    """Refuse, before trying, an allocation larger than the memory available."""
    available = CPU.free_memory()
    if nbytes > available:
        raise TooLargeError(f"{what} needs {nbytes / 1e9:,.1f} GB, more than the "
                            f"{available / 1e9:,.1f} GB of memory available")


def param_name(owner: str, name, taken) -> None:
    """ContractError unless ``name`` is a new parameter name: a model file names each
    parameter INDEX.NAME, and a second of one name would hide the first from training."""
    if isinstance(name, str) and name in taken:
        raise ContractError(f"{owner}: add_param({name!r}) twice: a parameter of that name "
                            f"exists; give each its own name")
    if not isinstance(name, str) or not name or "." in name:
        raise ContractError(f"{owner}: add_param({show(name)}): a parameter name is a "
                            f"non-empty string without '.'")


def param_start(owner: str, name: str, start, dtype):
    """add_param's second argument as a shape (a tuple or list of integer sizes >= 0) or
    as a start value (a float array, made a C-contiguous one of ``dtype``), else
    ContractError: a list of floats became the shape of their integer parts, None one
    NaN, an integer counter a float32 one that stops counting at 2**24, silently."""
    where = f"{owner}: add_param({name!r}, {show(start)})"
    if isinstance(start, (tuple, list)):
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_))
                   and s >= 0 for s in start):
            raise ContractError(f"{where}: a shape is a tuple of integer sizes >= 0; a start "
                                f"value is an array (np.array([...]))")
        return tuple(int(s) for s in start)
    try:
        kind = np.asarray(start).dtype.kind
    except (TypeError, ValueError, RuntimeError):  # a ragged list, a tensor that
        kind = None  # requires grad (.detach() it), a GPU tensor, ...
    if kind != "f":
        raise ContractError(f"{where}: a start value is an array of floats, which the "
                            f"parameter keeps in the layer's {np.dtype(dtype).name} (a count "
                            f"kept there is exact up to 2**24 in float32)")
    start = np.asarray(start)
    check_cast(owner, f"parameter {name!r}", start, dtype)  # 1e39: inf, before the cast
    return np.array(start, dtype=dtype, order="C")  # (a copy; 0-d stays 0-d, as torch's)


def per_sample_shape(owner: str, shape) -> tuple:
    """``shape`` as a tuple of sizes >= 0, or ShapeError: a layer's output_shape does
    arithmetic on it (min() of an empty tuple, "ab" * 2, ...)."""
    try:
        items = tuple(shape)
    except TypeError:
        items = None
    if isinstance(shape, (str, bytes)) or items is None or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0
            for s in items):
        raise ShapeError(f"{owner}: a per-sample shape is a tuple of sizes >= 0, got "
                         f"{show(shape)}")
    return tuple(int(s) for s in items)


def one_at_a_time(method):
    """A model's or a layer's forward, backward and predict (and what changes a model's
    mode, dtype, device or parameters), one thread at a time, a layer of a model with
    its model, and refused while another thread fits that model: a layer keeps one
    batch's arrays between the calls of a step (a pool's argmax indices), which another
    thread's call would swap for a smaller one that a kernel writes past."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        # A layer of a model takes the model's lock: the model runs its steps without
        # theirs, and a call of the layer alone in between swapped its arrays under
        # the model's kernels (a segfault in the max-pool's backward).
        ref = self.__dict__.get("container")
        owner = ref() if ref is not None else None
        holder = self if owner is None else owner
        # (the lock made once: setdefault's argument would be a new RLock every call)
        lock = holder.__dict__.get("_lock") or holder.__dict__.setdefault("_lock",
                                                                         threading.RLock())
        with lock:
            # (a layer alone is never fitted: the check passes there)
            check_not_fitting(holder, "this model" if owner is None else
                              f"{self.label}'s model")
            return method(self, *args, **kwargs)
    return run
