"""The fully connected layer: y = x w^T + b, with w of shape (out, in) as in PyTorch."""
import numpy as np

from .contract import Layer, layer_hook
from .validation import flag, integer


class Linear(Layer):
    """y = x W^T + b, the lecture's fully connected layer: weight (out_features,
    in_features) and bias (out_features,), as in PyTorch."""
    examples = [({"in_features": 5, "out_features": 3}, (4, 5)),
                ({"in_features": 1, "out_features": 2, "bias": False}, (1, 1))]

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = integer("Linear", "in_features", in_features)
        self.out_features = integer("Linear", "out_features", out_features)
        self.weight = self.add_param("weight", (self.out_features, self.in_features))
        self.bias = self.add_param("bias", (self.out_features,)) \
            if flag("Linear", "bias", bias) else None

    def reset_parameters(self, rng):
        # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, fan_in
        # the size of one output's weights (in_features; a convolution's C * kh * kw).
        bound = 1.0 / np.sqrt(self.weight.value[0].size)
        self.weight.value[...] = rng.uniform(-bound, bound, self.weight.value.shape)
        if self.bias is not None:
            self.bias.value[...] = rng.uniform(-bound, bound, self.bias.value.shape)

    def input_shape(self):
        return (self.in_features,)

    def output_shape(self, input_shape):
        return (self.out_features,)

    def flops(self, input_shape):
        macs = 2 * self.in_features * self.out_features
        bias = self.out_features if self.bias is not None else 0
        return macs + bias, macs + bias, macs

    def compile_unit(self, input_shape):
        return ("Linear",), 0.8  # bias forward and gradient kernels; the GEMMs are numpy's

    def _forward(self, x):
        k = self.kernels
        y = self._buffer("y", (x.shape[0], self.out_features))
        k.matmul(x, self.weight.value, y, trans_b=True)
        if self.bias is not None:
            k.add_bias(y, self.bias.value)
        self._x = x
        return y

    def _backward(self, dl_dy):
        k = self.kernels
        k.matmul(dl_dy, self._x, self.weight.grad, trans_a=True, accumulate=True)
        if self.bias is not None:
            k.accumulate_bias_grad(dl_dy, self.bias.grad)
        if not self.needs_input_grad:
            return None
        dl_dx = self._buffer("dx", self._x.shape)
        k.matmul(dl_dy, self.weight.value, dl_dx)  # a plugin's kernel need not return it
        return dl_dx


class LinearReLU(Layer):
    """A Linear and the ReLU after it, as a model runs them: the bias and the ReLU in
    one pass forward, the ReLU's mask and the bias gradient in one pass backward.
    It holds the Linear's own parameters (what the model's spec and buffers know)."""

    def __init__(self, linear: Linear):
        super().__init__()
        self.linear = linear
        self._params = linear._params
        self.dtype = linear.dtype

    def input_shape(self):
        return self.linear.input_shape()

    def output_shape(self, input_shape):
        return self.linear.output_shape(input_shape)

    def flops(self, input_shape):
        forward, weight, inputs = self.linear.flops(input_shape)
        n = self.linear.out_features
        return forward + n, weight + n, inputs

    def compile_unit(self, input_shape):
        return ("LinearReLU",), 1.0

    def _forward(self, x):
        k, lin = self.kernels, self.linear
        y = self._buffer("y", (x.shape[0], lin.out_features))
        k.matmul(x, lin.weight.value, y, trans_b=True)
        if lin.bias is not None:
            k.add_bias_relu(y, lin.bias.value)
        else:
            k.relu_forward(y.reshape(y.size), y.reshape(y.size))
        self._x, self._y = x, y
        return y

    def _backward(self, dl_dy):
        k, lin = self.kernels, self.linear
        dl_ds = self._buffer("ds", dl_dy.shape)
        if lin.bias is not None:
            k.relu_backward_bias_grad(self._y, dl_dy, dl_ds, lin.bias.grad)
        else:
            n = dl_dy.size
            k.relu_backward(self._y.reshape(n), dl_dy.reshape(n), dl_ds.reshape(n))
        k.matmul(dl_ds, self._x, lin.weight.grad, trans_a=True, accumulate=True)
        if not self.needs_input_grad:
            return None
        dl_dx = self._buffer("dx", self._x.shape)
        k.matmul(dl_ds, lin.weight.value, dl_dx)
        return dl_dx


nnumba_register_layers = layer_hook(Linear)
