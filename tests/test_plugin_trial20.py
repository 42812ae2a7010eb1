"""Plugin trial 20 (Upsample20: nearest-neighbour upsampling with its own CPU and CUDA
kernels, upnet20): gaps in ``nnumba.testing.check_device``.

Each test builds an Upsample20 whose "own kernels" are plain numpy functions in modules
made here, and a second device of numpy arrays whose kernels for the layer are broken the
way a CUDA twin written by hand is (a launch that covers a fixed number of elements, a
launch sized from ``nbytes // 8``, an exception in the wrapper).  That device stands in for
"cuda": the same bugs in numba.cuda kernels behave the same under NUMBA_ENABLE_CUDASIM=1
(see report.md, mutants M3b, M9, M7, M5).  The references are closed forms
(``np.repeat`` for the forward, a reshape-and-sum for the backward) and the CPU run.

The kit checks the examples' sizes in float64 only, as its docstring and the guide
now say; these tests hold what it does promise: an exception from the layer's device
code is a ConformanceError naming the example, with the cause chained.
"""
import sys
import types

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.device import CPUDevice
from nnumba.layers.validation import integer

from runtime_plugin import runtime_plugin


# ---- the layer's formulas, as numpy (the reference and the CPU "own kernels") ---------
def good_forward(x, y, s, h, w):
    p = x.size // (h * w)
    y[...] = x.reshape(p, h, w).repeat(s, axis=1).repeat(s, axis=2).reshape(-1)


def good_backward(dy, dx, s, h, w):
    p = dx.size // (h * w)
    dx[...] = dy.reshape(p, h, s, w, s).sum(axis=(2, 4)).reshape(-1)


def _module(name, **functions):
    mod = types.ModuleType(name)
    mod.__dict__.update(functions)
    sys.modules[name] = mod
    return mod


_module("t20_up_good", forward=good_forward, backward=good_backward)


# the CUDA twin's bug 1: a fixed launch of 2 blocks x 256 threads, no grid-stride loop
def fixed_forward(x, y, s, h, w):
    full = np.empty_like(y)
    good_forward(x, full, s, h, w)
    n = min(y.size, 2 * 256)
    y[:n] = full[:n]


def fixed_backward(dy, dx, s, h, w):
    full = np.empty_like(dx)
    good_backward(dy, full, s, h, w)
    n = min(dx.size, 2 * 256)
    dx[:n] = full[:n]


_module("t20_up_fixed", forward=fixed_forward, backward=fixed_backward)


# the CUDA twin's bug 2: the launch sized from nbytes // 8 (right in float64 only)
def bytes_forward(x, y, s, h, w):
    full = np.empty_like(y)
    good_forward(x, full, s, h, w)
    n = y.nbytes // 8
    y[:n] = full[:n]


def bytes_backward(dy, dx, s, h, w):
    full = np.empty_like(dx)
    good_backward(dy, full, s, h, w)
    n = dx.nbytes // 8
    dx[:n] = full[:n]


_module("t20_up_bytes", forward=bytes_forward, backward=bytes_backward)


# the plugin's own wrapper raising (a ZeroDivisionError), or lacking a function
def zerodiv_forward(x, y, s, h, w):
    y.size // (h - h)     # the author's own bug, in the device's wrapper: ZeroDivisionError
    good_forward(x, y, s, h, w)


_module("t20_up_zerodiv", forward=zerodiv_forward, backward=good_backward)
_module("t20_up_nobackward", forward=good_forward)   # `backward` misspelt / missing


class Other20(CPUDevice):
    """A device of numpy arrays: the layer runs the kernels its `devices` names for it."""
    name = "t20-other"
    kernel_set = "nnumba.kernels.cpu"


class Upsample20(Layer):
    """Nearest-neighbour upsampling of (N, C, H, W) by an integer scale."""

    type_name = "Up20Test"
    examples = [({"scale": 2}, (2, 3, 4, 5)), ({"scale": 3}, (1, 2, 3, 2)),
                ({}, (3, 1, 1, 1))]
    devices = {"cpu": "t20_up_good", "t20-other": "t20_up_good"}
    kept_for_backward = ()

    def __init__(self, scale: int = 2):
        super().__init__()
        self.scale = integer("Upsample20", "scale", scale, minimum=1)

    def input_shape(self):
        return (None, None, None)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        return (c, h * self.scale, w * self.scale)

    def _forward(self, x):
        n, c, h, w = x.shape
        s = self.scale
        y = self._buffer("y", (n, c, h * s, w * s), zero=True)
        self.own.forward(x.reshape(x.size), y.reshape(y.size), s, h, w)
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        n, c, h2, w2 = dl_dy.shape
        s = self.scale
        dl_dx = self._buffer("dx", (n, c, h2 // s, w2 // s), zero=True)
        self.own.backward(dl_dy.reshape(dl_dy.size), dl_dx.reshape(dl_dx.size), s,
                          h2 // s, w2 // s)
        return dl_dx


def _variant(name, module):
    return type(name, (Upsample20,), {"type_name": name,
                                       "devices": {"cpu": "t20_up_good", "t20-other": module}})


def _reference(x, s):
    return x.repeat(s, axis=2).repeat(s, axis=3)


def test_the_correct_layer_passes_both_kits():
    """Sanity: the layer, its numpy kernels and the stand-in device are right."""
    with runtime_plugin(devices={"t20-other": Other20()}):
        testing.check_all(Upsample20)
        assert testing.check_device(Upsample20, "t20-other") is True
        x = np.random.default_rng(0).random((5, 2, 3, 4)).astype(np.float32)
        y = nnumba.Sequential([Upsample20(scale=3)]).to("t20-other").predict(x)
        np.testing.assert_array_equal(y, _reference(x, 3))


# ---- 1. check_device runs each example at its own (tiny) size only ---------------------
def test_check_device_wraps_an_exception_from_the_layers_device_code():
    """plugins.md: "An exception your own code raises (a ZeroDivisionError in _forward)
    comes out as a ConformanceError naming the check and the example, with yours chained
    to it".  check_all does so; check_device lets the ZeroDivisionError (or the
    simulator's IndexError) out bare, naming neither the layer nor the example."""
    cls = _variant("Up20ZeroDiv", "t20_up_zerodiv")
    with runtime_plugin(devices={"t20-other": Other20()}):
        with pytest.raises(testing.ConformanceError) as info:
            testing.check_device(cls, "t20-other")
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert "Up20ZeroDiv" in str(info.value) and "(2, 3, 4, 5)" in str(info.value)


def test_check_device_chains_an_attribute_error_from_the_layers_device_module():
    """A device module lacking ``backward`` (a misspelt name): check_device raises a
    ConformanceError whose hint blames numpy on device arrays ("write it with
    self.kernels, or declare devices = ("cpu",)") and is raised ``from None``, so the
    traceback of the real cause is gone.  check_all, for the same module on the CPU,
    chains the AttributeError and names the example."""
    cls = _variant("Up20NoBackward", "t20_up_nobackward")
    with runtime_plugin(devices={"t20-other": Other20()}):
        with pytest.raises(testing.ConformanceError) as info:
            testing.check_device(cls, "t20-other")
    assert isinstance(info.value.__cause__, AttributeError)
    assert "(2, 3, 4, 5)" in str(info.value)
