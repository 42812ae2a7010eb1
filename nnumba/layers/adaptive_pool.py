"""Adaptive average pooling: any (C, H, W) to a fixed (C, Ho, Wo), with PyTorch's bins
(start floor(i*H/Ho), end ceil((i+1)*H/Ho)). AlexNet uses it to accept any image size;
at 224 x 224 its (256, 6, 6) input already has the output size and it is the identity."""
import numpy as np

from ..errors import ShapeError
from ..hookspecs import hookimpl
from ..kernels.cpu import adaptive_pool as kernels
from .base import Layer


def _output_pair(value):
    pair = (value, value) if not isinstance(value, (list, tuple)) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, (int, np.integer)) or isinstance(v, bool)
                             or v < 1 for v in pair):
        raise ValueError(f"AdaptiveAvgPool2d: output_size must be an int >= 1 or a pair of "
                         f"them, got {value!r}")
    return tuple(int(v) for v in pair)


class AdaptiveAvgPool2d(Layer):
    """Input (N, C, H, W), output (N, C, Ho, Wo): the mean over each bin."""
    examples = [({"output_size": 2}, (2, 3, 4, 4)),
                ({"output_size": [3, 2]}, (2, 2, 7, 5)),   # uneven, overlapping bins
                ({"output_size": 4}, (1, 2, 3, 2))]         # smaller input: rows repeat

    def __init__(self, output_size):
        super().__init__()
        self.output_size = _output_pair(output_size)

    def input_shape(self):
        return (None, None, None)  # any (C, H, W)

    def output_shape(self, input_shape):
        if min(input_shape) < 1:  # an empty plane would average over empty bins
            raise ShapeError(f"{self.label}: expected per-sample input (C, H, W) with "
                             f"C, H, W >= 1, got {tuple(input_shape)}")
        return (input_shape[0],) + self.output_size

    def check_input(self, x, *, check_finite=True):
        super().check_input(x, check_finite=check_finite)
        self.output_shape(x.shape[1:])

    def _forward(self, x):
        y = self._buffer("y", x.shape[:2] + self.output_size)
        x = np.ascontiguousarray(x)
        kernels.adaptive_avgpool2d_forward(x, y)
        self._x_shape = x.shape
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dl_dx = self._buffer("dx", self._x_shape)
        kernels.adaptive_avgpool2d_backward(dl_dy, dl_dx)
        return dl_dx

    def _forward_cuda(self, x):
        from ..kernels.cuda import adaptive_pool as kc
        y = self._device_buffer("y", x.shape[:2] + self.output_size)
        kc.adaptive_avgpool2d_forward(x, y)
        self._x_shape = x.shape
        return y

    def _backward_cuda(self, dl_dy):
        if not self.needs_input_grad:
            return None
        from ..kernels.cuda import adaptive_pool as kc
        dl_dx = self._device_buffer("dx", self._x_shape)
        kc.adaptive_avgpool2d_backward(dl_dy, dl_dx)
        return dl_dx


@hookimpl
def nnumba_register_layers():
    return {"AdaptiveAvgPool2d": AdaptiveAvgPool2d}
