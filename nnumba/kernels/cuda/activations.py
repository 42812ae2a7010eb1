"""Elementwise activation kernels on flat (1-D, contiguous) device arrays: the
twins of nnumba.kernels.cpu.activations, with the same formulas (the lecture's
tanh form, sigmoid without overflow). Backward kernels take the forward output y."""
import math

from numba import cuda

from ._grid import FLOATS, arr, launch_1d


@cuda.jit(cache=True)
def _relu_forward(x, y):
    zero = x.dtype.type(0)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = x[i] if x[i] > zero else zero


@cuda.jit(cache=True)
def _relu_backward(y, dl_dy, dl_dx):
    zero = y.dtype.type(0)
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        dl_dx[i] = dl_dy[i] if y[i] > zero else zero


@cuda.jit(cache=True)
def _tanh_forward(x, y):
    one = x.dtype.type(1)
    two = x.dtype.type(2)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        e = math.exp(-two * abs(x[i]))
        t = two / (one + e) - one
        y[i] = t if x[i] >= 0 else -t


@cuda.jit(cache=True)
def _tanh_backward(y, dl_dy, dl_dx):
    one = y.dtype.type(1)
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        dl_dx[i] = dl_dy[i] * (one - y[i] * y[i])


@cuda.jit(cache=True)
def _sigmoid_forward(x, y):
    one = x.dtype.type(1)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        e = math.exp(-abs(x[i]))
        y[i] = one / (one + e) if x[i] >= 0 else e / (one + e)


@cuda.jit(cache=True)
def _sigmoid_backward(y, dl_dy, dl_dx):
    one = y.dtype.type(1)
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        dl_dx[i] = dl_dy[i] * y[i] * (one - y[i])


@cuda.jit(cache=True)
def _threshold_forward(x, y):
    one = x.dtype.type(1)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = one if x[i] >= 0 else -one


def _unary(kernel):
    def run(x, y):
        if x.size:
            launch_1d(kernel, x.size)(x, y)
    run.__name__ = kernel.__name__.lstrip("_")
    run.__doc__ = f"y = f(x) elementwise (flat device arrays of one size): {run.__name__}."
    return run


def _binary(kernel):
    def run(y, dl_dy, dl_dx):
        if y.size:
            launch_1d(kernel, y.size)(y, dl_dy, dl_dx)
    run.__name__ = kernel.__name__.lstrip("_")
    run.__doc__ = f"dl_dx from the forward output y and dl_dy (flat): {run.__name__}."
    return run


relu_forward = _unary(_relu_forward)
relu_backward = _binary(_relu_backward)
tanh_forward = _unary(_tanh_forward)
tanh_backward = _binary(_tanh_backward)
sigmoid_forward = _unary(_sigmoid_forward)
sigmoid_backward = _binary(_sigmoid_backward)
threshold_forward = _unary(_threshold_forward)

_UNARY = [(arr(t, 1), arr(t, 1)) for t in FLOATS]
_BINARY = [(arr(t, 1), arr(t, 1), arr(t, 1)) for t in FLOATS]
PTX_SIGNATURES = {
    "_relu_forward": _UNARY, "_relu_backward": _BINARY,
    "_tanh_forward": _UNARY, "_tanh_backward": _BINARY,
    "_sigmoid_forward": _UNARY, "_sigmoid_backward": _BINARY,
    "_threshold_forward": _UNARY,
}
