"""Elementwise activations on flat (1-D, contiguous) device arrays: a grid-stride
loop around each formula of :mod:`nnumba.kernels.formulas` (the CPU's too), one
kernel for the forwards and one for the backwards, the unit chosen by their first
argument.  Backward kernels take the forward output y."""
from numba import cuda

from .. import formulas as f
from ._grid import over
from ..flat import check_flat_floats, checked
from ..cache_stamp import stamp

_device = cuda.jit(device=True, inline=True)
_relu, _relu_grad = _device(f.relu), _device(f.relu_grad)
_tanh, _tanh_grad = _device(f.tanh), _device(f.tanh_grad)
_sigmoid, _sigmoid_grad = _device(f.sigmoid), _device(f.sigmoid_grad)
_threshold = _device(f.threshold)
RELU, TANH, SIGMOID, THRESHOLD = range(4)


@cuda.jit(cache=True)
def _forward(unit, x, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if unit == RELU:
            _relu(x, y, i)
        elif unit == TANH:
            _tanh(x, y, i)
        elif unit == SIGMOID:
            _sigmoid(x, y, i)
        else:
            _threshold(x, y, i)


@cuda.jit(cache=True)
def _backward(unit, y, dl_dy, dl_dx):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        if unit == RELU:
            _relu_grad(y, dl_dy, dl_dx, i)
        elif unit == TANH:
            _tanh_grad(y, dl_dy, dl_dx, i)
        else:
            _sigmoid_grad(y, dl_dy, dl_dx, i)


def _unit(kernel, unit, name):
    """The kernel set's function: the CPU set's check, then the launch."""
    return checked(over(kernel, lead=(unit,), name=name), name, check_flat_floats)


relu_forward = _unit(_forward, RELU, "relu_forward")
relu_backward = _unit(_backward, RELU, "relu_backward")
tanh_forward = _unit(_forward, TANH, "tanh_forward")
tanh_backward = _unit(_backward, TANH, "tanh_backward")
sigmoid_forward = _unit(_forward, SIGMOID, "sigmoid_forward")
sigmoid_backward = _unit(_backward, SIGMOID, "sigmoid_backward")
threshold_forward = _unit(_forward, THRESHOLD, "threshold_forward")


stamp(globals())  # the disk cache follows every kernel source
