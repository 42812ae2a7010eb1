"""Elementwise activations on flat (1-D, contiguous) arrays: a parallel loop around
each formula of :mod:`nnumba.kernels.formulas`.  Layers pass ``x.reshape(-1)``
views, so one kernel serves every shape.  Each writes its output in full:
forward ``y[i] = f(x[i])``; backward ``dl_dx[i] = dl_dy[i] * f'`` with f' taken
from the forward *output* y, which is all it needs."""
from numba import njit, prange

from .. import formulas as f
from ..cache_stamp import stamp
from ..flat import check_flat_floats, checked

_OPTS = dict(parallel=True, cache=True, fastmath=f.NAN_EXACT)
_relu, _relu_grad = njit(inline="always")(f.relu), njit(inline="always")(f.relu_grad)
_tanh, _tanh_grad = njit(inline="always")(f.tanh), njit(inline="always")(f.tanh_grad)
_sigmoid, _sigmoid_grad = njit(inline="always")(f.sigmoid), njit(inline="always")(f.sigmoid_grad)
_threshold = njit(inline="always")(f.threshold)


@njit(**_OPTS)
def _relu_forward(x, y):
    """y = max(x, 0) (NaN stays NaN)."""
    for i in prange(x.size):
        _relu(x, y, i)


@njit(**_OPTS)
def _relu_backward(y, dl_dy, dl_dx):
    """dl_dx = dl_dy where the output y > 0, else 0."""
    for i in prange(y.size):
        _relu_grad(y, dl_dy, dl_dx, i)


# tanh and sigmoid: no fastmath, which would let LLVM evaluate expm1, exp and the
# division differently in vector lanes than in the scalar tail (a result depending
# on the element's position: sigmoid(0) gave 0.49999997 or 0.5 in float32).
@njit(parallel=True, cache=True)
def _tanh_forward(x, y):
    """y = tanh(x)."""
    for i in prange(x.size):
        _tanh(x, y, i)


@njit(**_OPTS)
def _tanh_backward(y, dl_dy, dl_dx):
    """dl_dx = dl_dy * (1 - y**2), y the forward output."""
    for i in prange(y.size):
        _tanh_grad(y, dl_dy, dl_dx, i)


@njit(parallel=True, cache=True)
def _sigmoid_forward(x, y):
    """y = 1 / (1 + exp(-x))."""
    for i in prange(x.size):
        _sigmoid(x, y, i)


@njit(**_OPTS)
def _sigmoid_backward(y, dl_dy, dl_dx):
    """dl_dx = dl_dy * y * (1 - y), y the forward output."""
    for i in prange(y.size):
        _sigmoid_grad(y, dl_dy, dl_dx, i)


@njit(**_OPTS)
def _threshold_forward(x, y):
    """y = 1 where x >= 0, else -1 (the lecture's sign unit; it has no gradient)."""
    for i in prange(x.size):
        _threshold(x, y, i)


# numba checks no bounds: a shorter output was written past its end (heap corruption)
relu_forward = checked(_relu_forward, "relu_forward", check_flat_floats)
relu_backward = checked(_relu_backward, "relu_backward", check_flat_floats)
tanh_forward = checked(_tanh_forward, "tanh_forward", check_flat_floats)
tanh_backward = checked(_tanh_backward, "tanh_backward", check_flat_floats)
sigmoid_forward = checked(_sigmoid_forward, "sigmoid_forward", check_flat_floats)
sigmoid_backward = checked(_sigmoid_backward, "sigmoid_backward", check_flat_floats)
threshold_forward = checked(_threshold_forward, "threshold_forward", check_flat_floats)


stamp(globals())  # the disk cache follows every kernel source
