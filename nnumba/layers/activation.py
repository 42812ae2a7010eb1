"""Elementwise activations: ReLU, Tanh, Sigmoid, Identity and the lecture's threshold unit."""
import math

from .contract import Layer, layer_hook
from .linear import Linear, LinearReLU


class _Elementwise(Layer):
    """An activation applied to every element; any input shape.  ``kernel`` names
    the kernel pair of the kernel set: ``{kernel}_forward`` / ``{kernel}_backward``."""
    kernel = ""
    examples = [({}, (3, 4)), ({}, (2, 3, 2, 2))]

    def flops(self, input_shape):
        n = math.prod(input_shape)
        return n, 0, n if self.has_gradient else None

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        getattr(self.kernels, f"{self.kernel}_forward")(x.reshape(x.size), y.reshape(y.size))
        self._y = y
        return y

    def _backward(self, dl_dy):
        dl_dx = self._buffer("dx", dl_dy.shape)
        n = dl_dy.size
        getattr(self.kernels, f"{self.kernel}_backward")(self._y.reshape(n), dl_dy.reshape(n),
                                                          dl_dx.reshape(n))
        return dl_dx


class ReLU(_Elementwise):
    """max(0, x)."""
    kernel = "relu"

    def fuse_after(self, previous):
        # Exact types on both sides: a subclass may compute otherwise, and the fused
        # layer would run the built-ins' computation in its place.
        if type(self) is ReLU and type(previous) is Linear:  # bias and ReLU in one pass
            fused = LinearReLU(previous)
            fused.set_flags(label=f"{previous.label} + {self.label}")
            return fused
        return None


class Tanh(_Elementwise):
    """The lecture's tanh: 2 / (1 + e^{-2x}) - 1."""
    kernel = "tanh"


class Sigmoid(_Elementwise):
    """1 / (1 + e^{-x})."""
    kernel = "sigmoid"


class Threshold(_Elementwise):
    """The lecture's sigma(x) = 1 if x >= 0 else -1: forward only, no gradient."""
    has_gradient = False
    kernel = "threshold"


class Identity(Layer):
    """y = x (a placeholder, and the linear model's activation)."""
    examples = [({}, (3, 4))]
    output_is_view = True

    def flops(self, input_shape):
        return 0, 0, 0

    def _forward(self, x):
        return x

    def _backward(self, dl_dy):
        return dl_dy


nnumba_register_layers = layer_hook(ReLU, Tanh, Sigmoid, Threshold, Identity)
