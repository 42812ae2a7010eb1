"""The inputs the kits test a layer on: what its ``example_input`` draws (by default
values in +-[0.1, 1]; an embedding's ids where the layer says so), checked before use,
and those past them it must refuse (``invalid_input``: ids out of range)."""
from __future__ import annotations

import numpy as np

from ..device import to_host
from ..errors import ContractError, NnumbaError
from ..layers.contract import Layer
from .failures import ConformanceError, _fail


def example_batch(layer, shape, rng) -> np.ndarray:
    """``layer.example_input(shape, rng)`` as float64, or a ConformanceError where it
    is no finite float array of that shape."""
    return _drawn(layer, "example_input", shape, rng)


def _draws_own(layer) -> bool:
    """Whether the layer overrides example_input (takes fewer values than any float)."""
    return type(layer).example_input is not Layer.example_input


def other_batch(layer, x, rng) -> np.ndarray:
    """A second input, off ``x`` (one a layer's state has not settled on): ``x`` moved
    (x 1.5 + 0.3, a mean and a spread off a batch norm's initial ones) where the layer
    takes any float, a fresh draw where it draws its own examples."""
    if not _draws_own(layer):
        return x * 1.5 + 0.3
    return example_batch(layer, x.shape, rng).astype(x.dtype)


def check_outside(layer, x, run=None):
    """Inputs past a layer's own draws: those its ``invalid_input(shape, rng)`` returns
    (ids out of range, say) must be refused by an error of nnumba's kind naming it; for a
    layer that draws its own examples, values far past their range must be refused so
    or taken (a finite output): a bare error (numpy's IndexError) or a NaN there is a
    bug, and a kernel would read past an array.  ``run(layer, x)``: its forward (on a
    device: the kit's runner).  Returns the inputs past the draws that it took (where
    the caller checks the gradient too: a narrow example_input checks it nowhere else)."""
    refuse = getattr(layer, "invalid_input", None)
    if (refuse is None and not _draws_own(layer)) or not x.size:
        return []
    training, taken = layer.training, []
    layer.eval()  # (no state a later check compares moves on these inputs)
    try:
        if refuse is not None:
            for seed in range(2):
                bad = _drawn(layer, "invalid_input", x.shape, np.random.default_rng(seed))
                _refused_or_finite(layer, bad, run, must_refuse=True)
        if _draws_own(layer):
            top = float(np.abs(x).max())
            for bad in (x + (2 * top + 1), x - (2 * top + 1)):  # beyond, below every example
                if _refused_or_finite(layer, bad, run, must_refuse=False):
                    taken.append(bad)
    finally:
        layer.train(training)
    return taken


def _drawn(layer, hook, shape, rng) -> np.ndarray:
    """What the layer's ``hook(shape, rng)`` returns, as float64, or a ConformanceError
    where it is no finite float array of that shape."""
    shape = tuple(shape)
    try:
        x = getattr(layer, hook)(shape, rng)
    except Exception as exc:  # noqa: BLE001 - the author's hook, reported
        _fail(layer, f"{hook}{shape} raised {type(exc).__name__}: {exc}")
    if type(x) is not np.ndarray or x.shape != shape or x.dtype.kind != "f" \
            or not np.isfinite(x).all():  # (a matrix or masked array: numpy's own type)
        what = f"{type(x).__name__} {x.dtype} {x.shape}" if isinstance(x, np.ndarray) \
            else type(x).__name__
        _fail(layer, f"{hook}{shape} returned {what}: it must return a finite float "
                     f"numpy.ndarray of exactly that shape")
    return np.ascontiguousarray(x, dtype=np.float64)  # (the kit perturbs it in place)


def _refused_or_finite(layer, bad, run, must_refuse) -> bool:
    """Whether the layer took ``bad`` (a finite output); False where it refused it."""
    what = "what invalid_input returns" if must_refuse else \
        "an input past the range example_input draws"
    try:
        y = to_host(layer.forward(bad) if run is None else run(layer, bad))
    except ConformanceError:
        raise
    except NnumbaError as exc:
        if isinstance(exc, ContractError) or layer.label not in str(exc):
            _fail(layer, f"{what} raised {type(exc).__name__} ({exc}) that does not name "
                         f"the layer ({layer.label})")
        return False
    except Exception as exc:  # noqa: BLE001 - the author's code, reported
        _fail(layer, f"{what} raised {type(exc).__name__}: {exc}; refuse such inputs, in "
                     f"Python before any kernel indexes with them, by an error of nnumba's "
                     f"kind (a subclass of nnumba.errors.NnumbaError) naming the layer")
    if must_refuse:
        _fail(layer, f"{what} was taken: refuse it, in Python before any kernel indexes "
                     f"with it, by an error of nnumba's kind naming the layer")
    if not np.isfinite(y).all():
        _fail(layer, f"{what} gave NaN or infinity; refuse such inputs by an error naming "
                     f"the layer")
    return True
