"""The kit's checks of the arrays a layer shares with its callers: what forward and
backward are given stays as it was, and what forward returns stays the caller's."""
from __future__ import annotations

import numpy as np

from ..layers.contract import CONTAINER_FLAGS
from .failures import _backward, _fail


def _flags(layer) -> dict:
    return {name: getattr(layer, name) for name in CONTAINER_FLAGS}


#: the flags of a layer alone, which the kit never changes on the layers it builds
_ALONE = {"reuse_buffers": False, "container": None}


def _check_flags(layer, before: dict, method: str, alone: bool):
    """A container flag is the model's to set (trial 49: a layer setting reuse_buffers
    was told it returned a keep=True buffer); ``alone``: a layer the kit built."""
    for name, value in _flags(layer).items():
        if value is not before[name] or (alone and value is not _ALONE.get(name, value)):
            _fail(layer, f"{method} set {name}, a flag its model sets on it (docs/plugins.md: "
                         f"a layer reads the container flags and never sets them)")


def check_read_only(layer, x, rng, alone: bool = False):
    """forward leaves ``x`` and backward ``dl_dy`` as they were: in a model they are
    the arrays of the layers around it, which their own backward reads; and a second
    forward leaves the first one's output as it was (trial 39: a keep=True buffer).
    Neither sets a container flag (``alone``: the kit built the layer, so none is set
    at all)."""
    x0 = x.copy()
    flags = _flags(layer)
    y = layer.forward(x)
    _check_flags(layer, flags, "_forward", alone)
    if not np.array_equal(x, x0):
        _fail(layer, "_forward wrote into its input x, which is the output of the layer "
                     "before: that layer's backward reads it. Write into arrays from "
                     "self._buffer(...) instead")
    again = layer.forward(x)  # a layer alone reuses no buffers: its caller keeps y
    # (an output that is x itself, or a view of it, is the caller's x: nothing overwritten)
    if np.may_share_memory(again, y) and not np.may_share_memory(again, x):
        _fail(layer, "two forwards returned arrays that share memory: the second overwrote "
                     "the output a caller kept; return arrays from self._buffer(key, shape) "
                     "without keep=True (for scratch no caller sees)")
    if not layer.has_gradient:
        return
    g = rng.normal(size=y.shape).astype(y.dtype)  # (the layer's dtype: float32 too)
    for asked in (True, False):  # as an inner layer, then as a model's first layer
        layer.set_flags(needs_input_grad=asked)
        layer.forward(x)
        g0 = g.copy()
        flags = _flags(layer)
        _backward(layer, g)
        _check_flags(layer, flags, "_backward", alone)
        mode = "" if asked else " with needs_input_grad False (a model's first layer)"
        for name, now, was in (("dl_dy", g, g0), ("its input x", x, x0)):
            if not np.array_equal(now, was):
                _fail(layer, f"_backward{mode} wrote into {name}, an array of another "
                             f"layer; write into arrays from self._buffer(...) instead")
    layer.set_flags(needs_input_grad=True)
