"""The inputs the kits test a layer on: what its ``example_input`` draws (by default
values in +-[0.1, 1]; an embedding's ids where the layer says so), checked before use."""
from __future__ import annotations

import numpy as np

from ..layers.contract import Layer
from .failures import _fail


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
    return x.astype(np.float64)


def other_batch(layer, x, rng) -> np.ndarray:
    """A second input, off ``x`` (one a layer's state has not settled on): ``x`` moved
    (x 1.5 + 0.3, a mean and a spread off a batch norm's initial ones) where the layer
    takes any float, a fresh draw where it draws its own examples."""
    if type(layer).example_input is Layer.example_input:
        return x * 1.5 + 0.3
    return example_batch(layer, x.shape, rng).astype(x.dtype)
