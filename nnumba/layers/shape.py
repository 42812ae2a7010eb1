"""Layers that only reshape: Flatten (the lecture's Shape1D)."""
import math

from .contract import Layer, layer_hook


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...): a view, no copy."""
    examples = [({}, (2, 3, 4, 5)), ({}, (3, 7))]
    output_is_view = True

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def flops(self, input_shape):
        return 0, 0, 0

    def compile_unit(self, input_shape):
        return ("Flatten",), 0.0  # a view: no kernel

    def _forward(self, x):
        self._in_shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # explicit sizes: device arrays too

    def _backward(self, dl_dy):
        return dl_dy.reshape(self._in_shape)


nnumba_register_layers = layer_hook(Flatten)
