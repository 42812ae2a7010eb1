"""The layers: validated by nnumba's Layer base, computed by the kernels."""
from nnumba import Layer
from nnumba.errors import SpecError
from nnumba.layers.validation import number

from . import kernels


class LeakyReLU(Layer):
    """x if x > 0 else negative_slope * x (this plugin's own @njit kernels: CPU only)."""
    devices = ("cpu",)
    examples = [({}, (3, 4)), ({"negative_slope": 0.2}, (2, 3, 5))]

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        # number() refuses what is not a finite real number (a spec's "x", true, NaN),
        # which the comparison below would take or fail on with a TypeError.
        slope = number("LeakyReLU", "negative_slope", negative_slope)
        if not 0 <= slope < 1:  # number()'s bounds are closed; this one is open at 1
            raise SpecError(f"LeakyReLU: negative_slope must be in [0, 1), got {slope}")
        self.negative_slope = slope

    def _forward(self, x):
        self._x = x
        y = self._buffer("y", x.shape)
        kernels.leaky_relu_forward(x.reshape(-1), x.dtype.type(self.negative_slope), y.reshape(-1))
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dl_dx = self._buffer("dx", dl_dy.shape)
        kernels.leaky_relu_backward(self._x.reshape(-1), self._x.dtype.type(self.negative_slope),
                                    dl_dy.reshape(-1), dl_dx.reshape(-1))
        return dl_dx


class Softplus(Layer):
    """log(1 + e^x), a smooth ReLU (this plugin's own @njit kernels: CPU only)."""
    devices = ("cpu",)
    examples = [({}, (3, 4))]

    def _forward(self, x):
        self._x = x
        y = self._buffer("y", x.shape)
        kernels.softplus_forward(x.reshape(-1), y.reshape(-1))
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dl_dx = self._buffer("dx", dl_dy.shape)
        kernels.softplus_backward(self._x.reshape(-1), dl_dy.reshape(-1), dl_dx.reshape(-1))
        return dl_dx
