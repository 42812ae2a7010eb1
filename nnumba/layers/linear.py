"""The fully connected layer: y = x w^T + b, with w of shape (out, in) as in PyTorch."""
import numpy as np

from ..hookspecs import hookimpl
from ..kernels.cpu import dense
from .base import Layer, default_rng


class Linear(Layer):
    examples = [({"in_features": 5, "out_features": 3}, (4, 5)),
                ({"in_features": 1, "out_features": 2, "bias": False}, (1, 1))]

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(f"Linear: in_features and out_features must be >= 1, "
                             f"got {in_features} and {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = self.add_param("weight", np.zeros((self.out_features, self.in_features)))
        self.bias = self.add_param("bias", np.zeros(self.out_features)) if bias else None
        self.reset_parameters(default_rng())

    def reset_parameters(self, rng):
        # PyTorch's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
        bound = 1.0 / np.sqrt(self.in_features)
        self.weight.value[...] = rng.uniform(-bound, bound, self.weight.value.shape)
        if self.bias is not None:
            self.bias.value[...] = rng.uniform(-bound, bound, self.bias.value.shape)

    def input_shape(self):
        return (self.in_features,)

    def output_shape(self, input_shape):
        return (self.out_features,)

    def compile_unit(self, input_shape):
        return ("Linear",), 0.8  # bias forward and gradient kernels; the GEMMs are numpy's

    def _forward(self, x):
        y = self._buffer("y", (x.shape[0], self.out_features))
        np.matmul(x, self.weight.value.T, out=y)
        if self.bias is not None:
            dense.add_bias(y, self.bias.value)
        self._x = x
        return y

    def _backward(self, dl_dy):
        if self.grads_are_zero:  # += onto zeros is =: skip the temporary
            np.matmul(dl_dy.T, self._x, out=self.weight.grad)
        else:
            dw = self._buffer("dw", self.weight.value.shape)
            np.matmul(dl_dy.T, self._x, out=dw)
            dense.accumulate(self.weight.grad.reshape(-1), dw.reshape(-1))
        if self.bias is not None:
            dense.accumulate_bias_grad(dl_dy, self.bias.grad)
        if not self.needs_input_grad:
            return None
        dl_dx = self._buffer("dx", self._x.shape)
        return np.matmul(dl_dy, self.weight.value, out=dl_dx)

    # ---- on the GPU: the tiled matmul reads the transposes in place ----------------
    def _forward_cuda(self, x):
        from ..kernels.cuda import dense as kd
        y = self._device_buffer("y", (x.shape[0], self.out_features))
        kd.matmul(x, self.weight.value, y, trans_b=True)
        if self.bias is not None:
            kd.add_bias(y, self.bias.value)
        self._x = x
        return y

    def _backward_cuda(self, dl_dy):
        from ..kernels.cuda import dense as kd
        kd.matmul(dl_dy, self._x, self.weight.grad, trans_a=True,
                  accumulate=not self.grads_are_zero)
        if self.bias is not None:
            kd.accumulate_bias_grad(dl_dy, self.bias.grad)
        if not self.needs_input_grad:
            return None
        dl_dx = self._device_buffer("dx", self._x.shape)
        return kd.matmul(dl_dy, self.weight.value, dl_dx)


@hookimpl
def nnumba_register_layers():
    return {"Linear": Linear}
