"""Adaptive average pooling: any (C, H, W) to a fixed (C, Ho, Wo), with PyTorch's bins
(start floor(i*H/Ho), end ceil((i+1)*H/Ho)). AlexNet uses it to accept any image size;
at 224 x 224 its (256, 6, 6) input already has the output size and it is the identity."""
import math

from ..errors import ShapeError
from .contract import Layer, layer_hook
from .validation import check_fits, integer_pair


def _bins_total(size: int, out: int) -> int:
    """The sum of the bins' lengths along one axis
    (:func:`nnumba.kernels.formulas.adaptive_bin`), in closed form: the ends'
    floors telescope to ``size``, and every bin's end is rounded up but the
    gcd(size, out) that end on an input boundary."""
    return size + out - math.gcd(size, out)


class AdaptiveAvgPool2d(Layer):
    """Input (N, C, H, W), output (N, C, Ho, Wo): the mean over each bin."""
    examples = [({"output_size": 2}, (2, 3, 4, 4)),
                ({"output_size": [3, 2]}, (2, 2, 7, 5)),   # uneven, overlapping bins
                ({"output_size": 4}, (1, 2, 3, 2))]         # smaller input: rows repeat

    def __init__(self, output_size):
        super().__init__()
        self.output_size = integer_pair("AdaptiveAvgPool2d", "output_size", output_size)

    def input_shape(self):
        return (None, None, None)  # any (C, H, W)

    def output_shape(self, input_shape):
        check_fits(self, input_shape)  # called alone, () would fail in min() below
        if min(input_shape) < 1:  # an empty plane would average over empty bins
            raise ShapeError(f"{self.label}: expected per-sample input (C, H, W) with "
                             f"C, H, W >= 1, got {tuple(input_shape)}")
        return (input_shape[0],) + self.output_size

    def flops(self, input_shape):
        c, h, w = input_shape
        total = c * _bins_total(h, self.output_size[0]) * _bins_total(w, self.output_size[1])
        return total, 0, total

    def _forward(self, x):
        y = self._buffer("y", x.shape[:2] + self.output_size)
        self.kernels.adaptive_avgpool2d_forward(x, y)
        self._x_shape = x.shape
        return y

    def _backward(self, dl_dy):
        dl_dx = self._buffer("dx", self._x_shape)
        self.kernels.adaptive_avgpool2d_backward(dl_dy, dl_dx)
        return dl_dx


nnumba_register_layers = layer_hook(AdaptiveAvgPool2d)
