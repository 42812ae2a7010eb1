"""Conv3d: "a 3d convolution can be used if the channel index has some metric meaning,
such as time for a series of grayscale video frames".

It runs the 2-D kernels (one kernel per job): the kd frames under each output depth
become kd x C channels of one 2-D image, so that

    out[n, :, t] = conv2d(x[n, :, t*sd - pd : t*sd - pd + kd] as (C*kd, H, W), w as (D, C*kd, kh, kw))

for every (n, t) at once, a batch of N*To images.  The frames are gathered into that
batch (``gather_rows``, from a copy with one zero row for the padding), and the
input gradient folded back in ceil(kd / sd) gathers (each takes one window's
frame for every input frame), so the body runs on every device's kernel set.
"""
import math

import numpy as np

from ..errors import ShapeError
from ..kernels.geometry import out_size
from .contract import Layer, layer_hook
from .conv import _ConvNd
from .linear import Linear
from .validation import check_fits, check_memory, flag, integer, integer_tuple


class Conv3d(Layer):
    """Input (N, C, T, H, W), D filters of C x kd x kh x kw: output (N, D, To, Ho, Wo),
    weights (D, C, kd, kh, kw) as in PyTorch."""
    examples = [({"in_channels": 2, "out_channels": 3, "kernel_size": 2}, (2, 2, 3, 4, 5)),
                ({"in_channels": 1, "out_channels": 2, "kernel_size": [3, 2, 2],
                  "stride": [2, 1, 2], "padding": [1, 0, 1]}, (2, 1, 5, 3, 4)),
                ({"in_channels": 3, "out_channels": 2, "kernel_size": 1, "bias": False},
                 (1, 3, 2, 2, 2))]
    # (_indices: the gathers' row indices, for the last input shape and device)
    kept_for_backward = ("_x", "_frames", "_keep", "_indices")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True):
        super().__init__()
        name = self.type_name
        self.in_channels = integer(name, "in_channels", in_channels)
        self.out_channels = integer(name, "out_channels", out_channels)
        kernel = integer_tuple(name, "kernel_size", kernel_size, 3)
        stride = integer_tuple(name, "stride", stride, 3)
        padding = integer_tuple(name, "padding", padding, 3, 0)
        # depth, then the (h, w) pairs the 2-D kernels (and _ConvNd's checks) take
        (self.depth_kernel, self.depth_stride, self.depth_padding) = \
            kernel[0], stride[0], padding[0]
        self.kernel, self.stride, self.padding = kernel[1:], stride[1:], padding[1:]
        self.weight = self.add_param("weight", (self.out_channels, self.in_channels) + kernel)
        self.bias = self.add_param("bias", (self.out_channels,)) if flag(name, "bias", bias) \
            else None

    reset_parameters = Linear.reset_parameters  # PyTorch's default, fan_in = C * kd * kh * kw
    _check_workspace = _ConvNd._check_workspace  # of the 2-D problem it runs

    def input_shape(self):
        return (self.in_channels, None, None, None)

    def output_shape(self, input_shape):
        check_fits(self, input_shape)
        kernels = (self.depth_kernel,) + self.kernel
        out = tuple(out_size(s, k, st, p) for s, k, st, p in zip(
            input_shape[1:], kernels, (self.depth_stride,) + self.stride,
            (self.depth_padding,) + self.padding))
        if min(out) < 1:
            raise ShapeError(f"{self.label}: input {tuple(input_shape)} is smaller than the "
                             f"kernel {kernels} with padding "
                             f"{(self.depth_padding,) + self.padding}")
        return (self.out_channels,) + out

    def flops(self, input_shape):
        outputs = math.prod(self.output_shape(input_shape))
        macs = 2 * outputs * self.in_channels * self.depth_kernel * math.prod(self.kernel)
        bias = outputs if self.bias is not None else 0
        return macs + bias, macs + bias, macs

    def compile_unit(self, input_shape):
        from ..kernels.cpu.conv import uses_direct  # as _ConvNd's, for the 2-D problem
        out = self.output_shape(input_shape)
        direct = uses_direct(self.in_channels * self.depth_kernel, self.kernel, out[2:],
                             self.stride)
        key = ("conv", direct, direct and self.needs_input_grad)
        return key, (5.0 + 3.0 * self.needs_input_grad) if direct else 5.0

    def _plan(self, shape):
        """The row indices of the gathers for input ``shape``, on the layer's device:
        (frames' rows from the input's, output rows from the 2-D outputs', 2-D output
        gradient rows from the gradient's, then the fold: one map per depth window that
        can cover an input frame, ceil(kd / sd) of them).  Kept for the last shape only;
        the memory all this takes is checked first."""
        key = (shape, self.device.name)
        kept = self.__dict__.get("_indices")
        if kept is not None and kept[0] == key:
            return kept[1]
        self._indices = None  # (another shape's, no longer needed)
        N, C, T, H, W = shape
        D, To = self.out_channels, self.output_shape(shape[1:])[1]
        kd, sd, pd = self.depth_kernel, self.depth_stride, self.depth_padding
        passes = -(-kd // sd)
        frames, rows = N * To * C * kd, N * C * T
        check_memory(f"{self.label}'s frames and row indices for input {shape}",
                     8 * (frames + passes * rows + 2 * N * D * To) +
                     self.dtype.itemsize * H * W * (2 * frames + 3 * rows))
        n, t, c, k = np.ix_(range(N), range(To), range(C), range(kd))
        frame = t * sd + k - pd  # the zero row after the input's rows where padding
        gather = np.where((frame >= 0) & (frame < T), (n * C + c) * T + frame, rows)
        n, c, s = np.ix_(range(N), range(C), range(T))
        folds = []  # input row (n, c, s) takes frames row (n, t, c, k), s = t sd + k - pd
        for j in range(passes):
            t = (s + pd) // sd - j
            k = s + pd - t * sd
            ok = (t >= 0) & (t < To) & (k < kd)
            folds.append(np.where(ok, ((n * To + t) * C + c) * kd + k, frames))
        maps = tuple(self.device.to_device(np.ascontiguousarray(a.reshape(-1), dtype=np.int64))
                     for a in (gather, _swap(N, To, D), _swap(N, D, To), *folds))
        self._indices = (key, maps)
        return maps

    def _forward(self, x):
        k = self.kernels
        N, C, T, H, W = x.shape
        D, To, Ho, Wo = self.output_shape(x.shape[1:])
        kd, hw = self.depth_kernel, H * W
        gather, swap = self._plan(x.shape)[:2]
        self._check_workspace((N * To, C * kd, H, W), x.shape)
        rows = self._buffer("rows", (N * C * T + 1, hw), keep=True)  # x, then a zero row
        k.scale(x.reshape(x.size), 1.0, rows[:-1].reshape(x.size))
        k.fill(rows[-1], 0)
        frames = self._buffer("frames", (N * To * C * kd, hw), keep=True)
        k.gather_rows(rows, gather, frames)
        frames = frames.reshape(N * To, C * kd, H, W)
        y2 = self._buffer("y2", (N * To, D, Ho, Wo), keep=True)
        self._keep = self.__dict__.get("_keep") or {} if self.training else None
        k.conv2d_forward(frames, self._weight2(self.weight.value),
                         None if self.bias is None else self.bias.value, self.stride,
                         self.padding, y2, keep=self._keep)
        y = self._buffer("y", (N, D, To, Ho, Wo))
        k.gather_rows(y2.reshape(N * To * D, Ho * Wo), swap, y.reshape(N * D * To, Ho * Wo))
        self._x, self._frames = x, frames
        return y

    def _backward(self, dl_dy):
        k = self.kernels
        x, frames = self._x, self._frames
        N, D, To, Ho, Wo = dl_dy.shape
        dy2 = self._buffer("dy2", (N * To, D, Ho, Wo), keep=True)
        plan = self._plan(x.shape)
        k.gather_rows(dl_dy.reshape(N * D * To, Ho * Wo), plan[2],
                      dy2.reshape(N * To * D, Ho * Wo))
        keep = self.__dict__.get("_keep")
        k.conv2d_backward_weight(frames, dy2, self.stride, self.padding,
                                 self._weight2(self.weight.grad),
                                 None if self.bias is None else self.bias.grad, keep=keep)
        if not self.needs_input_grad:
            return None
        hw = x.shape[3] * x.shape[4]
        dframes = self._buffer("dframes", (frames.shape[0] * frames.shape[1] + 1, hw), keep=True)
        k.conv2d_backward_input(dy2, self._weight2(self.weight.value), self.stride,
                                self.padding, dframes[:-1].reshape(frames.shape), keep=keep)
        k.fill(dframes[-1], 0)
        dx = self._buffer("dx", x.shape)
        rows = dx.reshape(-1, hw)
        k.gather_rows(dframes, plan[3], rows)  # each pass: one frames row per input row
        if len(plan) > 4:  # windows that overlap (kd > sd): the other passes add theirs
            tap = self._buffer("tap", rows.shape, keep=True)
            for fold in plan[4:]:
                k.gather_rows(dframes, fold, tap)
                k.accumulate(rows.reshape(-1), tap.reshape(-1))
        return dx

    def _weight2(self, a):
        """(D, C, kd, kh, kw) as the 2-D kernels' (D, C*kd, kh, kw): the same memory."""
        return a.reshape((a.shape[0], a.shape[1] * a.shape[2]) + a.shape[3:])

    def set_device(self, device):
        self._indices = None  # (arrays of the device left)
        super().set_device(device)


def _swap(N, A, B) -> np.ndarray:
    """Row indices that read (N, A, B) rows as (N, B, A): the two inner axes swapped."""
    n, b, a = np.ix_(range(N), range(B), range(A))
    return (n * A + a) * B + b


nnumba_register_layers = layer_hook(Conv3d)
