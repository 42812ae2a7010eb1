"""Convolution layers (cross-correlation, as deep learning means it), weights (D, C, kh, kw)
as in PyTorch. Conv1d runs the 2-D kernels on a height-1 view: one kernel per job."""
import numpy as np

from ..hookspecs import hookimpl
from ..kernels.cpu import conv as kernels
from .base import Layer, default_rng


def _pair(value, what):
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or any(int(v) != v for v in pair):
        raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) for v in pair)


def out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """floor((size + 2 pad - kernel) / stride) + 1: the lecture's H - h + 1 at stride 1."""
    return (size + 2 * pad - kernel) // stride + 1


class _ConvNd(Layer):
    """Shared by Conv2d and Conv1d; the 1-D layer is the 2-D one with height 1."""
    spatial = 2

    def _setup(self, in_channels, out_channels, kernel, stride, padding, bias):
        if int(in_channels) < 1 or int(out_channels) < 1:
            raise ValueError(f"{self.type_name}: channels must be >= 1, got "
                             f"{in_channels} -> {out_channels}")
        if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
            raise ValueError(f"{self.type_name}: kernel_size and stride must be >= 1 and "
                             f"padding >= 0, got {kernel}, {stride}, {padding}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.weight = self.add_param("weight", np.zeros((self.out_channels, self.in_channels)
                                                        + kernel[2 - self.spatial:]))
        self.bias = self.add_param("bias", np.zeros(self.out_channels)) if bias else None
        self.reset_parameters(default_rng())

    def reset_parameters(self, rng):
        # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C * kh * kw.
        bound = 1.0 / np.sqrt(self.weight.value[0].size)
        self.weight.value[...] = rng.uniform(-bound, bound, self.weight.value.shape)
        if self.bias is not None:
            self.bias.value[...] = rng.uniform(-bound, bound, self.bias.value.shape)

    def input_shape(self):
        return (self.in_channels,) + (None,) * self.spatial

    def output_shape(self, input_shape):
        spatial = (1,) * (2 - self.spatial) + tuple(input_shape[1:])
        out = tuple(out_size(s, k, st, p) for s, k, st, p in
                    zip(spatial, self.kernel, self.stride, self.padding))
        if min(out) < 1:
            raise ValueError(f"{self.label}: input {tuple(input_shape)} is smaller than the "
                             f"kernel {self.kernel[2 - self.spatial:]} with padding "
                             f"{self.padding[2 - self.spatial:]}")
        return (self.out_channels,) + out[2 - self.spatial:]

    def check_input(self, x, *, check_finite=True):
        super().check_input(x, check_finite=check_finite)
        self.output_shape(x.shape[1:])  # an input smaller than the kernel is refused here

    def compile_unit(self, input_shape):
        # Seconds measured on one Zen 4 core: the direct kernels (forward and weight
        # gradient) ~6.5 s; the im2col path ~4 s, its input gradient included.
        out = self.output_shape(input_shape)
        direct = kernels.uses_direct(self.in_channels, self.kernel,
                                     ((1,) * (2 - self.spatial) + out[1:]), self.stride)
        key = ("conv", direct, direct and self.needs_input_grad)
        return key, (6.5 + 3.0 * self.needs_input_grad) if direct else 4.0

    def _as_2d(self, a):
        return a if self.spatial == 2 else a.reshape(a.shape[:2] + (1,) + a.shape[2:])

    def _forward(self, x):
        out_shape = (x.shape[0],) + self.output_shape(x.shape[1:])
        y = self._buffer("y", out_shape)
        x4 = np.ascontiguousarray(self._as_2d(x))
        bias = self.bias.value if self.bias is not None else np.zeros(self.out_channels, self.dtype)
        kernels.conv2d_forward(x4, self._as_2d(self.weight.value), bias, self.stride,
                               self.padding, self._as_2d(y))
        self._x4 = x4
        return y

    def _backward(self, dl_dy):
        dy4 = self._as_2d(dl_dy)
        w4 = self._as_2d(self.weight.value)
        db = self.bias.grad if self.bias is not None else np.zeros(self.out_channels, self.dtype)
        kernels.conv2d_backward_weight(self._x4, dy4, self.stride, self.padding,
                                       self._as_2d(self.weight.grad), db)
        if not self.needs_input_grad:
            return None
        dx4 = self._buffer("dx", self._x4.shape)
        kernels.conv2d_backward_input(dy4, w4, self.stride, self.padding, dx4)
        return dx4.reshape((dx4.shape[0], self.in_channels) + dx4.shape[4 - self.spatial:])

    # ---- on the GPU: the same kernels' CUDA twins, Conv1d through the same view ----
    def _forward_cuda(self, x):
        from ..kernels.cuda import conv as kc
        out_shape = (x.shape[0],) + self.output_shape(x.shape[1:])
        y = self._device_buffer("y", out_shape)
        x4 = self._as_2d(x)
        bias = self.bias.value if self.bias is not None else None
        kc.conv2d_forward(x4, self._as_2d(self.weight.value), bias, self.stride,
                          self.padding, self._as_2d(y))
        self._x4 = x4
        return y

    def _backward_cuda(self, dl_dy):
        from ..kernels.cuda import conv as kc
        dy4 = self._as_2d(dl_dy)
        kc.conv2d_backward_weight(self._x4, dy4, self.stride, self.padding,
                                  self._as_2d(self.weight.grad),
                                  self.bias.grad if self.bias is not None else None)
        if not self.needs_input_grad:
            return None
        dx4 = self._device_buffer("dx", self._x4.shape)
        kc.conv2d_backward_input(dy4, self._as_2d(self.weight.value), self.stride,
                                 self.padding, dx4)
        return dx4.reshape((dx4.shape[0], self.in_channels) + dx4.shape[4 - self.spatial:])


class Conv2d(_ConvNd):
    """Input (N, C, H, W), D filters of C x kh x kw: output (N, D, Ho, Wo)."""
    examples = [({"in_channels": 2, "out_channels": 3, "kernel_size": 3}, (2, 2, 5, 6)),
                ({"in_channels": 1, "out_channels": 2, "kernel_size": [2, 3], "stride": 2,
                  "padding": 1}, (3, 1, 5, 5)),
                ({"in_channels": 3, "out_channels": 1, "kernel_size": 1, "bias": False},
                 (1, 3, 2, 2))]

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True):
        super().__init__()
        self._setup(in_channels, out_channels, _pair(kernel_size, "kernel_size"),
                    _pair(stride, "stride"), _pair(padding, "padding"), bias)


class Conv1d(_ConvNd):
    """Input (N, C, L), D filters of C x k: output (N, D, Lo)."""
    spatial = 1
    examples = [({"in_channels": 2, "out_channels": 3, "kernel_size": 3}, (2, 2, 7)),
                ({"in_channels": 1, "out_channels": 1, "kernel_size": 2, "stride": 2,
                  "padding": 1}, (2, 1, 6))]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        for name, v in (("kernel_size", kernel_size), ("stride", stride), ("padding", padding)):
            if not np.isscalar(v) or int(v) != v:
                raise ValueError(f"Conv1d: {name} must be an int, got {v!r}")
        self._setup(in_channels, out_channels, (1, int(kernel_size)), (1, int(stride)),
                    (0, int(padding)), bias)


@hookimpl
def nnumba_register_layers():
    return {"Conv2d": Conv2d, "Conv1d": Conv1d}
