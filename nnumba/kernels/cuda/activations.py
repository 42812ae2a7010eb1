"""Elementwise activations on flat (1-D, contiguous) device arrays: a grid-stride
loop around each formula of :mod:`nnumba.kernels.formulas` (the CPU's too).
Backward kernels take the forward output y."""
from numba import cuda

from .. import formulas as f
from ._grid import over
from ..cache_stamp import stamp

_device = cuda.jit(device=True, inline=True)
_relu, _relu_grad = _device(f.relu), _device(f.relu_grad)
_tanh, _tanh_grad = _device(f.tanh), _device(f.tanh_grad)
_sigmoid, _sigmoid_grad = _device(f.sigmoid), _device(f.sigmoid_grad)
_threshold = _device(f.threshold)


@cuda.jit(cache=True)
def _relu_forward(x, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        _relu(x, y, i)


@cuda.jit(cache=True)
def _relu_backward(y, dl_dy, dl_dx):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        _relu_grad(y, dl_dy, dl_dx, i)


@cuda.jit(cache=True)
def _tanh_forward(x, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        _tanh(x, y, i)


@cuda.jit(cache=True)
def _tanh_backward(y, dl_dy, dl_dx):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        _tanh_grad(y, dl_dy, dl_dx, i)


@cuda.jit(cache=True)
def _sigmoid_forward(x, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        _sigmoid(x, y, i)


@cuda.jit(cache=True)
def _sigmoid_backward(y, dl_dy, dl_dx):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        _sigmoid_grad(y, dl_dy, dl_dx, i)


@cuda.jit(cache=True)
def _threshold_forward(x, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        _threshold(x, y, i)


relu_forward, relu_backward = over(_relu_forward), over(_relu_backward)
tanh_forward, tanh_backward = over(_tanh_forward), over(_tanh_backward)
sigmoid_forward, sigmoid_backward = over(_sigmoid_forward), over(_sigmoid_backward)
threshold_forward = over(_threshold_forward)


stamp(globals())  # the disk cache follows every kernel source
