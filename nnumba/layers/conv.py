"""Convolution layers (cross-correlation, as deep learning means it), weights
(D, C, kh, kw) as in PyTorch.  Conv1d runs the 2-D kernels on a height-1 view:
one kernel per job."""
import math

from ..errors import ShapeError
from ..kernels.geometry import out_size
from .contract import Layer, layer_hook
from .linear import Linear
from .validation import check_fits, check_memory, flag, integer, integer_pair


class _ConvNd(Layer):
    """Shared by Conv2d and Conv1d; the 1-D layer is the 2-D one with height 1."""
    spatial = 2
    # (_keep: the im2col columns the kernels keep, 5 MB in a fitted lenet)
    kept_for_backward = ("_x4", "_keep")

    def _setup(self, in_channels, out_channels, kernel, stride, padding, bias):
        name = self.type_name
        self.in_channels = integer(name, "in_channels", in_channels)
        self.out_channels = integer(name, "out_channels", out_channels)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.weight = self.add_param("weight", (self.out_channels, self.in_channels)
                                     + kernel[2 - self.spatial:])
        self.bias = self.add_param("bias", (self.out_channels,)) \
            if flag(name, "bias", bias) else None

    reset_parameters = Linear.reset_parameters  # PyTorch's default, fan_in = C * kh * kw

    def input_shape(self):
        return (self.in_channels,) + (None,) * self.spatial

    def output_shape(self, input_shape):
        check_fits(self, input_shape)  # called alone, () would fail in min() below
        spatial = (1,) * (2 - self.spatial) + tuple(input_shape[1:])
        out = tuple(out_size(s, k, st, p) for s, k, st, p in
                    zip(spatial, self.kernel, self.stride, self.padding))
        if min(out) < 1:
            raise ShapeError(f"{self.label}: input {tuple(input_shape)} is smaller than the "
                             f"kernel {self.kernel[2 - self.spatial:]} with padding "
                             f"{self.padding[2 - self.spatial:]}")
        return (self.out_channels,) + out[2 - self.spatial:]

    def flops(self, input_shape):
        outputs = math.prod(self.output_shape(input_shape))
        macs = 2 * outputs * self.in_channels * math.prod(self.kernel)
        bias = outputs if self.bias is not None else 0
        return macs + bias, macs + bias, macs

    def compile_unit(self, input_shape):
        # Seconds measured on one Zen 4 core: the direct kernels (forward and weight
        # gradient) ~5 s; the im2col path ~5 s, its input gradient included.
        from ..kernels.cpu.conv import uses_direct
        out = self.output_shape(input_shape)
        direct = uses_direct(self.in_channels, self.kernel,
                             ((1,) * (2 - self.spatial) + out[1:]), self.stride)
        key = ("conv", direct, direct and self.needs_input_grad)
        return key, (5.0 + 3.0 * self.needs_input_grad) if direct else 5.0

    def _as_2d(self, a):
        return a if self.spatial == 2 else a.reshape(a.shape[:2] + (1,) + a.shape[2:])

    def _check_workspace(self, x4_shape, input_shape):
        """The kernels' scratch arrays (a zero-padded copy of the input, the im2col
        columns, the direct kernels' shifted rows, Winograd's tiles) dwarf the output
        where padding, stride or channels are huge: TooLargeError, naming the caller's
        ``input_shape``, before they are asked for.  Once per shape and dtype."""
        if self.__dict__.get("_workspace_ok") == (x4_shape, self.dtype):  # float64: twice
            return
        N, C, H, W = x4_shape
        (kh, kw), (sh, _), (ph, pw) = self.kernel, self.stride, self.padding
        Ho, Wo = (out_size(*a) for a in zip((H, W), self.kernel, self.stride, self.padding))
        D, tiles = self.out_channels, N * ((Ho + 1) // 2) * ((Wo + 1) // 2)
        # Winograd's (3 x 3 or 5 x 5, stride 1): (k + 1)^2 transformed tiles a channel,
        # beside the input twice (batch-inner, padded) and the output batch-inner
        tile = (kh + 1) ** 2 if kh == kw and kh in (3, 5) and sh == 1 else 0
        elements = max(N * C * (H + 2 * ph) * (W + 2 * pw), N * C * kh * kw * Ho * Wo,
                       C * kw * ((Ho - 1) * sh + kh) * Wo,
                       tile * (tiles * (C + D) + C * D) + bool(tile) * N * (
                           C * H * W + C * (Ho + kh + 1) * (Wo + kw + 1) + D * Ho * Wo))
        check_memory(f"{self.label}'s scratch arrays for input {input_shape}",
                     elements * self.dtype.itemsize)
        self._workspace_ok = (x4_shape, self.dtype)

    def _forward(self, x):
        y = self._buffer("y", (x.shape[0],) + self.output_shape(x.shape[1:]))
        x4 = self._as_2d(x)
        self._check_workspace(x4.shape, x.shape)
        bias = self.bias.value if self.bias is not None else None
        # training: the kernels may keep what the backward of this x makes again
        self._keep = self.__dict__.get("_keep") or {} if self.training else None
        self.kernels.conv2d_forward(x4, self._as_2d(self.weight.value), bias, self.stride,
                                    self.padding, self._as_2d(y), keep=self._keep)
        self._x4 = x4
        return y

    def _backward(self, dl_dy):
        k = self.kernels
        dy4 = self._as_2d(dl_dy)
        keep = self.__dict__.get("_keep")
        k.conv2d_backward_weight(self._x4, dy4, self.stride, self.padding,
                                 self._as_2d(self.weight.grad),
                                 self.bias.grad if self.bias is not None else None, keep=keep)
        if not self.needs_input_grad:
            return None
        dx4 = self._buffer("dx", self._x4.shape)
        k.conv2d_backward_input(dy4, self._as_2d(self.weight.value), self.stride,
                                self.padding, dx4, keep=keep)
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
        self._setup(in_channels, out_channels, integer_pair("Conv2d", "kernel_size", kernel_size),
                    integer_pair("Conv2d", "stride", stride),
                    integer_pair("Conv2d", "padding", padding, 0), bias)


class Conv1d(_ConvNd):
    """Input (N, C, L), D filters of C x k: output (N, D, Lo)."""
    spatial = 1
    examples = [({"in_channels": 2, "out_channels": 3, "kernel_size": 3}, (2, 2, 7)),
                ({"in_channels": 1, "out_channels": 1, "kernel_size": 2, "stride": 2,
                  "padding": 1}, (2, 1, 6))]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self._setup(in_channels, out_channels, (1, integer("Conv1d", "kernel_size", kernel_size)),
                    (1, integer("Conv1d", "stride", stride)),
                    (0, integer("Conv1d", "padding", padding, 0)), bias)


nnumba_register_layers = layer_hook(Conv2d, Conv1d)
