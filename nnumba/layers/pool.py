"""Max and average pooling, 2-D and 1-D (the 1-D layers run the 2-D kernels on a
height-1 view). Non-overlapping blocks by default (stride = kernel); a smaller
stride gives overlapping pools. No padding: output floor((H - k) / s) + 1."""
import numpy as np

from ..hookspecs import hookimpl
from ..kernels.cpu import pool as kernels
from .base import Layer
from .conv import _pair, out_size


class _PoolNd(Layer):
    spatial = 2
    mode = "max"

    def _setup(self, kernel, stride):
        if min(kernel) < 1 or min(stride) < 1:
            raise ValueError(f"{self.type_name}: kernel_size and stride must be >= 1, "
                             f"got {kernel} and {stride}")
        self.kernel, self.stride = kernel, stride
        self.fuse_relu = False  # set by Sequential when a ReLU precedes: see model._fuse

    def input_shape(self):
        return (None,) * (self.spatial + 1)

    def output_shape(self, input_shape):
        spatial = (1,) * (2 - self.spatial) + tuple(input_shape[1:])
        out = tuple(out_size(s, k, st, 0) for s, k, st in zip(spatial, self.kernel, self.stride))
        if min(out) < 1:
            raise ValueError(f"{self.label}: input {tuple(input_shape)} is smaller than the "
                             f"pooling window {self.kernel[2 - self.spatial:]}")
        return (input_shape[0],) + out[2 - self.spatial:]

    def check_input(self, x, *, check_finite=True):
        super().check_input(x, check_finite=check_finite)
        self.output_shape(x.shape[1:])

    def compile_unit(self, input_shape):
        # Every max-pool shares the max kernels (~4 s to compile), every average pool
        # the average ones.
        return ("pool", self.mode), 4.0 if self.mode == "max" else 1.5

    def _as_2d(self, a):
        return a if self.spatial == 2 else a.reshape(a.shape[:2] + (1,) + a.shape[2:])

    def _forward(self, x):
        y = self._buffer("y", (x.shape[0],) + self.output_shape(x.shape[1:]))
        x4, y4 = np.ascontiguousarray(self._as_2d(x)), self._as_2d(y)
        self._x_shape = x4.shape
        if self.mode == "avg":
            kernels.avgpool2d_forward(x4, self.kernel, self.stride, y4)
            return y
        self._argmax = self._buffer("argmax", y4.shape, np.int32)
        if self.fuse_relu:
            kernels.relu_maxpool2d_forward(x4, self.kernel, self.stride, y4, self._argmax)
        else:
            kernels.maxpool2d_forward(x4, self.kernel, self.stride, y4, self._argmax)
        self._y4 = y4
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", self._x_shape)
        dy4 = self._as_2d(dl_dy)
        if self.mode == "avg":
            kernels.avgpool2d_backward(dy4, self.kernel, self.stride, dx)
        elif self.fuse_relu:
            kernels.relu_maxpool2d_backward(dy4, self._argmax, self._y4, dx)
        else:
            kernels.maxpool2d_backward(dy4, self._argmax, dx)
        return dx.reshape((dx.shape[0], dx.shape[1]) + dx.shape[4 - self.spatial:])

    # ---- on the GPU: the CUDA twins, same calls ---------------------------------------
    def _forward_cuda(self, x):
        from ..kernels.cuda import pool as kc
        y = self._device_buffer("y", (x.shape[0],) + self.output_shape(x.shape[1:]))
        x4, y4 = self._as_2d(x), self._as_2d(y)
        self._x_shape = x4.shape
        if self.mode == "avg":
            kc.avgpool2d_forward(x4, self.kernel, self.stride, y4)
            return y
        self._argmax = self._device_buffer("argmax", y4.shape, np.int32)
        forward = kc.relu_maxpool2d_forward if self.fuse_relu else kc.maxpool2d_forward
        forward(x4, self.kernel, self.stride, y4, self._argmax)
        self._y4 = y4
        return y

    def _backward_cuda(self, dl_dy):
        if not self.needs_input_grad:
            return None
        from ..kernels.cuda import pool as kc
        dx = self._device_buffer("dx", self._x_shape)
        dy4 = self._as_2d(dl_dy)
        if self.mode == "avg":
            kc.avgpool2d_backward(dy4, self.kernel, self.stride, dx)
        elif self.fuse_relu:
            kc.relu_maxpool2d_backward(dy4, self._argmax, self._y4, dx)
        else:
            kc.maxpool2d_backward(dy4, self._argmax, dx)
        return dx.reshape((dx.shape[0], dx.shape[1]) + dx.shape[4 - self.spatial:])


class MaxPool2d(_PoolNd):
    """The maximum of each kh x kw window; ties go to the first in row-major order."""
    examples = [({"kernel_size": 2}, (2, 3, 4, 6)), ({"kernel_size": 3}, (2, 2, 7, 7)),
                ({"kernel_size": 3, "stride": 2}, (1, 2, 7, 9))]

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        kernel = _pair(kernel_size, "kernel_size")
        self._setup(kernel, kernel if stride is None else _pair(stride, "stride"))


class AvgPool2d(MaxPool2d):
    """The mean of each kh x kw window."""
    mode = "avg"


class MaxPool1d(_PoolNd):
    spatial = 1
    examples = [({"kernel_size": 2}, (2, 3, 8)), ({"kernel_size": 3, "stride": 1}, (1, 2, 7))]

    def __init__(self, kernel_size: int, stride=None):
        super().__init__()
        if not np.isscalar(kernel_size) or (stride is not None and not np.isscalar(stride)):
            raise ValueError(f"{self.type_name}: kernel_size and stride must be ints")
        self._setup((1, int(kernel_size)), (1, int(kernel_size if stride is None else stride)))


class AvgPool1d(MaxPool1d):
    mode = "avg"


@hookimpl
def nnumba_register_layers():
    return {cls.type_name: cls for cls in (MaxPool2d, AvgPool2d, MaxPool1d, AvgPool1d)}
