"""A Conv2d, the ReLU after it and a max-pool, as a model runs them (what
:meth:`ReLUMaxPool2d.fuse_after` returns for a Conv2d where the CPU's one-pass
kernels take the three, :func:`nnumba.kernels.cpu.conv_pool.fusable`): one kernel
per pass, which keeps each image's convolution output in cache (the lecture's
conv1)."""
from .contract import Layer
from .conv import Conv2d

#: cold compile of the one-pass kernels: 7.3 s measured on one Zen 4 core (the
#: direct convolution's and the max-pool's bodies they call)
ONE_PASS_SECONDS = 7.3


class Conv2dReLUMaxPool2d(Layer):
    """Runs ``conv``, then ReLU and the max-pool ``pool`` (a ReLUMaxPool2d); it
    holds the Conv2d's own parameters (what the model's spec and buffers know)."""
    kept_for_backward = ("_x", "_y", "_argmax")

    def __init__(self, conv: Conv2d, pool):
        super().__init__()
        self.conv, self.pool = conv, pool
        self._params = conv._params
        self.dtype = conv.dtype

    def input_shape(self):
        return self.conv.input_shape()

    def output_shape(self, input_shape):
        return self.pool.output_shape(self.conv.output_shape(input_shape))

    def flops(self, input_shape):
        conv = self.conv.flops(input_shape)
        pool = self.pool.flops(self.conv.output_shape(input_shape))
        return tuple(a + b for a, b in zip(conv, pool))

    def compile_unit(self, input_shape):
        # Grouped with the model's other max-pools, whose bodies the one-pass kernels
        # call: compiled once, in one process.
        return ("pool", "max"), ONE_PASS_SECONDS

    def _forward(self, x):
        conv = self.conv
        y = self._buffer("y", (x.shape[0],) + self.output_shape(x.shape[1:]))
        self._argmax = self._buffer("argmax", y.shape, "int32")
        conv._check_workspace(x.shape, x.shape)
        self.kernels.conv2d_relu_maxpool2d_forward(
            x, conv.weight.value, None if conv.bias is None else conv.bias.value, conv.stride,
            conv.padding, self.pool.kernel, self.pool.stride, y, self._argmax)
        self._x, self._y = x, y
        return y

    def _backward(self, dl_dy):
        conv = self.conv
        dx = self._buffer("dx", self._x.shape) if self.needs_input_grad else None
        self.kernels.conv2d_relu_maxpool2d_backward(
            self._x, conv.weight.value, dl_dy, self._argmax, self._y, conv.stride,
            conv.padding, conv.weight.grad, None if conv.bias is None else conv.bias.grad, dx)
        return dx
