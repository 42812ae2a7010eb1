"""The inputs the kits test a layer on: what its ``example_input`` draws (by default
values in +-[0.1, 1]; an embedding's ids where the layer says so), checked before use."""
from __future__ import annotations

import numpy as np

from ..layers.contract import Layer
from .failures import ConformanceError, _fail


def example_batch(layer, shape, rng) -> np.ndarray:
    """``layer.example_input(shape, rng)`` as float64, or a ConformanceError where it
    is no finite float array of that shape."""
    shape = tuple(shape)
    try:
        x = layer.example_input(shape, rng)
    except Exception as exc:  # noqa: BLE001 - the author's hook, reported
        _fail(layer, f"example_input{shape} raised {type(exc).__name__}: {exc}")
    if type(x) is not np.ndarray or x.shape != shape or x.dtype.kind != "f" \
            or not np.isfinite(x).all():  # (a matrix or masked array: numpy's own type)
        what = f"{type(x).__name__} {x.dtype} {x.shape}" if isinstance(x, np.ndarray) \
            else type(x).__name__
        _fail(layer, f"example_input{shape} returned {what}: it must return a finite "
                     f"float numpy.ndarray of exactly that shape")
    return np.ascontiguousarray(x, dtype=np.float64)  # (the kit perturbs it in place)


def other_batch(layer, x, rng) -> np.ndarray:
    """A second input, off ``x`` (one a layer's state has not settled on): ``x`` moved
    (x 1.5 + 0.3, a mean and a spread off a batch norm's initial ones) where the layer
    takes any float, a fresh draw where it draws its own examples."""
    if type(layer).example_input is Layer.example_input:
        return x * 1.5 + 0.3
    return example_batch(layer, x.shape, rng).astype(x.dtype)


def check_outside(layer, x, run=None):
    """A layer that draws its own examples refuses an input past their range with an
    error of nnumba's kind naming it; one whose draws are not all whole numbers may take
    it instead (a finite output). Ids past the range taken (a hash of any id), a bare
    error (numpy's IndexError) or a NaN is a bug: a kernel would read past an array.
    ``run(layer, x)``: its forward (on a device: the kit's runner)."""
    if type(layer).example_input is Layer.example_input or not x.size:
        return
    top = float(np.abs(x).max())
    ids = bool(np.array_equal(x, np.round(x)))
    training = layer.training
    layer.eval()  # (no state a later check compares moves on these inputs)
    try:
        for bad in (x + (2 * top + 1), x - (2 * top + 1)):  # beyond, then below, all examples
            _refused_or_finite(layer, bad, run, ids)
    finally:
        layer.train(training)


def _refused_or_finite(layer, bad, run, ids):
    from ..device import to_host
    from ..errors import ContractError, NnumbaError
    try:
        y = to_host(layer.forward(bad) if run is None else run(layer, bad))
    except ConformanceError:
        raise
    except NnumbaError as exc:
        if isinstance(exc, ContractError) or layer.label not in str(exc):
            _fail(layer, f"an input past the range example_input draws raised "
                         f"{type(exc).__name__} ({exc}) that does not name the layer "
                         f"({layer.label})")
        return
    except Exception as exc:  # noqa: BLE001 - the author's code, reported
        _fail(layer, f"an input past the range example_input draws (such as ids out of "
                     f"range) raised {type(exc).__name__}: {exc}; refuse it, in Python "
                     f"before any kernel indexes with it, by an error of nnumba's kind "
                     f"(a subclass of nnumba.errors.NnumbaError) naming the layer")
    if ids:
        _fail(layer, f"ids past the range example_input draws (as {float(bad.flat[0]):g}) were "
                     f"taken: an id layer refuses an id out of range, in Python before any "
                     f"kernel indexes with it, by an error of nnumba's kind naming the layer")
    if not np.isfinite(y).all():
        _fail(layer, "an input past the range example_input draws gave NaN or infinity; "
                     "refuse such inputs by an error naming the layer")
