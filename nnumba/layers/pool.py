"""Max and average pooling, 2-D and 1-D (the 1-D layers run the 2-D kernels on a
height-1 view).  Non-overlapping blocks by default (stride = kernel); a smaller
stride gives overlapping pools.  No padding: output floor((H - k) / s) + 1.

A ReLU followed by a max-pool runs as one fused layer (ReLUMaxPool2d /
ReLUMaxPool1d, what :meth:`MaxPool2d.fuse_after` returns): relu(max) = max(relu),
and one pass over the largest activation of the lecture's CNN saves about 1 ms a
step.  After a Conv2d the three run as one (:mod:`.conv_pool`)."""
import math

from ..errors import ShapeError, TooLargeError
from ..kernels.cpu.conv_pool import fusable
from ..kernels.geometry import out_size
from .activation import ReLU
from .contract import Layer, layer_hook
from .conv import Conv2d, _ConvNd
from .conv_pool import Conv2dReLUMaxPool2d
from .validation import check_fits, integer, integer_pair


#: the largest (H, W) plane a max-pool takes: its argmax holds int32 flat indices
ARGMAX_LIMIT = 2**31 - 1


class _PoolNd(Layer):
    spatial = 2
    mode = "max"
    relu = False  # the fused layers: relu first
    kept_for_backward = ("_argmax", "_y4")

    def input_shape(self):
        return (None,) * (self.spatial + 1)

    def output_shape(self, input_shape):
        check_fits(self, input_shape)  # called alone, () would fail in min() below
        spatial = (1,) * (2 - self.spatial) + tuple(input_shape[1:])
        out = tuple(out_size(s, k, st) for s, k, st in zip(spatial, self.kernel, self.stride))
        if min(out) < 1:
            raise ShapeError(f"{self.label}: input {tuple(input_shape)} is smaller than the "
                             f"pooling window {self.kernel[2 - self.spatial:]}")
        if self.mode == "max" and spatial[0] * spatial[1] > ARGMAX_LIMIT:
            # the kernels keep each maximum's flat index i * W + j in its plane as int32:
            # past it the index wraps, and backward writes outside the gradient array
            raise TooLargeError(f"{self.label}: input planes of {spatial[0]:,} x "
                                f"{spatial[1]:,} values are more than max pooling can index "
                                f"(int32: at most {ARGMAX_LIMIT:,} per plane)")
        return (input_shape[0],) + out[2 - self.spatial:]

    def flops(self, input_shape):
        outputs = math.prod(self.output_shape(input_shape))
        window = math.prod(self.kernel)
        if self.mode == "avg":
            return outputs * window, 0, outputs * window
        return outputs * (window - 1 + self.relu), 0, outputs * (1 + self.relu)

    def compile_unit(self, input_shape):
        # Every max-pool shares the max kernels (~3 s to compile), every average pool
        # the average ones.
        return ("pool", self.mode), 3.0 if self.mode == "max" else 1.5

    def fuse_after(self, previous):
        # Exact types (as ReLU.fuse_after): a subclass may compute otherwise, or take
        # arguments the fused layer does not.
        if type(self) in (MaxPool2d, MaxPool1d) and type(previous) is ReLU:
            fused = (ReLUMaxPool2d if self.spatial == 2 else ReLUMaxPool1d)(**self.config())
            fused.label = f"{previous.label} + {self.label}"
            return fused.astype(self.dtype)
        if type(self) is ReLUMaxPool2d and type(previous) is Conv2d and fusable(
                previous.in_channels, previous.out_channels, previous.kernel, self.kernel,
                self.stride):  # where the CPU's one-pass kernels take it (else no gain)
            fused = Conv2dReLUMaxPool2d(previous, self)
            fused.set_flags(label=f"{previous.label} + {self.label}")
            return fused
        return None

    _as_2d = _ConvNd._as_2d  # the 1-D layers: a height-1 view

    def _forward(self, x):
        k = self.kernels
        y = self._buffer("y", (x.shape[0],) + self.output_shape(x.shape[1:]))
        x4, y4 = self._as_2d(x), self._as_2d(y)
        self._x_shape = x4.shape
        if self.mode == "avg":
            k.avgpool2d_forward(x4, self.kernel, self.stride, y4)
            return y
        self._argmax = self._buffer("argmax", y4.shape, "int32")
        forward = k.relu_maxpool2d_forward if self.relu else k.maxpool2d_forward
        forward(x4, self.kernel, self.stride, y4, self._argmax)
        self._y4 = y4
        return y

    def _backward(self, dl_dy):
        k = self.kernels
        dx = self._buffer("dx", self._x_shape)
        dy4 = self._as_2d(dl_dy)
        if self.mode == "avg":
            k.avgpool2d_backward(dy4, self.kernel, self.stride, dx)
        elif self.relu:
            k.relu_maxpool2d_backward(dy4, self._argmax, self._y4, dx)
        else:
            k.maxpool2d_backward(dy4, self._argmax, dx)
        return dx.reshape((dx.shape[0], dx.shape[1]) + dx.shape[4 - self.spatial:])


class MaxPool2d(_PoolNd):
    """The maximum of each kh x kw window; ties go to the first in row-major order."""
    examples = [({"kernel_size": 2}, (2, 3, 4, 6)), ({"kernel_size": 3}, (2, 2, 7, 7)),
                ({"kernel_size": 3, "stride": 2}, (1, 2, 7, 9))]

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel = integer_pair(self.type_name, "kernel_size", kernel_size)
        self.stride = self.kernel if stride is None else \
            integer_pair(self.type_name, "stride", stride)


class AvgPool2d(MaxPool2d):
    """The mean of each kh x kw window."""
    mode = "avg"


class ReLUMaxPool2d(MaxPool2d):
    """max-pool of relu(x) in one pass; a model runs it for ReLU then MaxPool2d."""
    relu = True


class MaxPool1d(_PoolNd):
    """The maximum of each window of k along L."""
    spatial = 1
    examples = [({"kernel_size": 2}, (2, 3, 8)), ({"kernel_size": 3, "stride": 1}, (1, 2, 7))]

    def __init__(self, kernel_size: int, stride=None):
        super().__init__()
        k = integer(self.type_name, "kernel_size", kernel_size)
        self.kernel = (1, k)
        self.stride = (1, k if stride is None else integer(self.type_name, "stride", stride))


class AvgPool1d(MaxPool1d):
    """The mean of each window of k along L."""
    mode = "avg"


class ReLUMaxPool1d(MaxPool1d):
    """max-pool of relu(x) in one pass; a model runs it for ReLU then MaxPool1d."""
    relu = True


nnumba_register_layers = layer_hook(MaxPool2d, AvgPool2d, ReLUMaxPool2d, MaxPool1d, AvgPool1d,
                                    ReLUMaxPool1d)
