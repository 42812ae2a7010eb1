"""A layer's parameters (:class:`Parameter`), the generator that initialises layers
built without a model seed, and the shapes-only mode ``nnumba summary`` builds in."""
from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np

from . import validation
from ..errors import ContractError

_default_rng = np.random.default_rng()
# Per thread: a build in shapes-only mode (nnumba summary, build("mlp")'s activation
# check) gave the models another thread built meanwhile read-only zero-size weights.
_mode = threading.local()


def seed(value: int | None):
    """Seed the generator that initialises layers built without a model seed (None:
    fresh entropy from the operating system)."""
    global _default_rng
    if value is not None:
        value = validation.integer("nnumba.seed", "seed", value, 0, None)
    _default_rng = np.random.default_rng(value)


def default_rng() -> np.random.Generator:
    return _default_rng


def in_shapes_only() -> bool:
    """Whether layers are being built by :func:`shapes_only` (in this thread)."""
    return getattr(_mode, "shapes_only", False)


@contextlib.contextmanager
def shapes_only():
    """Layers built inside, in this thread, hold zero-size stand-ins for their
    parameters (the right shapes, no memory, not initialised): ``nnumba summary``
    sizes a model this way."""
    outer = in_shapes_only()
    _mode.shapes_only = True
    try:
        yield
    finally:
        _mode.shapes_only = outer


class Parameter:
    """An array and its gradient, updated in place (never rebound by layers); not
    ``trainable``: state the layer updates itself, which no optimizer touches."""
    __slots__ = ("value", "grad", "trainable")

    def __init__(self, value, grad=None, trainable: bool = True):
        self.value, self.trainable = value, trainable
        self.grad = np.zeros_like(value) if grad is None else grad

    def __reduce__(self):  # (slots alone pickle at protocol 2 and up only)
        # A copy's gradient starts at zero (a model's copy makes its own anyway): the
        # last batch's can be solved for its samples (dW / db of a first Linear).
        host = isinstance(self.grad, np.ndarray)  # (a device's zeros are its own)
        return Parameter, (self.value, None if host else self.grad, self.trainable)

    def __repr__(self):
        return f"Parameter(shape={self.value.shape}, dtype={self.value.dtype})"


def checked_reset(reset):
    """``reset_parameters`` that refuses new arrays for a parameter: it must write in place."""
    @functools.wraps(reset)
    def checked(self, rng):
        before = {name: (p.value, p.grad) for name, p in self.__dict__.get(
            "_params", {}).items()}
        result = reset(self, rng)
        for name, (value, grad) in before.items():
            p = self._params.get(name)
            if p is not None and (p.value is not value or p.grad is not grad):
                field = "value" if p.value is not value else "grad"
                raise ContractError(
                    f"{self.label}: reset_parameters assigned a new array to "
                    f"{name}.{field}; write into it in place ({name}.{field}[...] = ...): "
                    f"a model keeps its parameters in one buffer and would lose it")
        return result
    checked._checked = True
    return checked
