"""A layer with parameters, written against nnumba's kernel set: it runs on every
device nnumba has (CPU and CUDA) with no other code."""
import numpy as np

from nnumba import Layer
from nnumba.layers.validation import flag, integer


class LowRankLinear(Layer):
    """y = (x U^T) V^T + b: a Linear(in, out) whose weight is the product V U of
    V (out, rank) and U (rank, in), so it holds (in + out) * rank weights, not in * out."""
    examples = [({"in_features": 5, "out_features": 4, "rank": 2}, (3, 5)),
                ({"in_features": 3, "out_features": 2, "rank": 1, "bias": False}, (2, 3))]
    kept_for_backward = ("_x", "_h")

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.in_features = integer("LowRankLinear", "in_features", in_features)
        self.out_features = integer("LowRankLinear", "out_features", out_features)
        self.rank = integer("LowRankLinear", "rank", rank)
        # Declared by shape; reset_parameters gives the values (called for us after __init__).
        self.u = self.add_param("u", (self.rank, self.in_features))
        self.v = self.add_param("v", (self.out_features, self.rank))
        self.bias = self.add_param("bias", (self.out_features,)) \
            if flag("LowRankLinear", "bias", bias) else None

    def reset_parameters(self, rng):
        # In place, from rng only: a model re-seeds its layers through this.
        self.u.value[...] = rng.uniform(-1, 1, self.u.value.shape) / np.sqrt(self.in_features)
        self.v.value[...] = rng.uniform(-1, 1, self.v.value.shape) / np.sqrt(self.rank)
        if self.bias is not None:
            self.bias.value[...] = 0

    def input_shape(self):
        return (self.in_features,)

    def output_shape(self, input_shape):
        return (self.out_features,)

    def flops(self, input_shape):
        # forward: two products; backward: dV and dU (weights), dh and dx (input)
        h = 2 * self.rank * self.in_features
        y = 2 * self.out_features * self.rank
        bias = self.out_features if self.bias is not None else 0
        return h + y + bias, y + h + y + bias, h

    def _forward(self, x):
        k = self.kernels          # the kernel set of the layer's device
        n = x.shape[0]
        h = self._buffer("h", (n, self.rank))
        k.matmul(x, self.u.value, h, trans_b=True)                  # h = x U^T
        y = self._buffer("y", (n, self.out_features))
        k.matmul(h, self.v.value, y, trans_b=True)                  # y = h V^T
        if self.bias is not None:
            k.add_bias(y, self.bias.value)
        self._x, self._h = x, h
        return y

    def _backward(self, dl_dy):
        k = self.kernels
        k.matmul(dl_dy, self._h, self.v.grad, trans_a=True, accumulate=True)   # dV += dy^T h
        if self.bias is not None:
            k.accumulate_bias_grad(dl_dy, self.bias.grad)
        dh = self._buffer("dh", self._h.shape)
        k.matmul(dl_dy, self.v.value, dh)                                     # dh = dy V
        k.matmul(dh, self._x, self.u.grad, trans_a=True, accumulate=True)     # dU += dh^T x
        if not self.needs_input_grad:   # parameter gradients are added all the same
            return None
        dx = self._buffer("dx", self._x.shape)
        k.matmul(dh, self.u.value, dx)  # dx = dh U (a kernel writes its output; none returns it)
        return dx
