"""A convolution, the ReLU after it and a max-pool (the CPU set's signatures,
nnumba.kernels.cpu.conv_pool): here the three kernels one after another, through
a device array kept for the next call of the same shape."""
from ..geometry import conv2d_output_array_shape
from ._grid import device_empty
from ..window_checks import check_conv_pool, check_conv_pool_backward
from .conv import _launch_backward_input, _launch_backward_weight, _launch_forward
from .pool import _launch_relu_maxpool, _launch_relu_unpool

_kept = {}  # (shape, dtype) -> the convolution's output or its gradient


def _conv_out(x, w, stride, pad):
    return device_empty(conv2d_output_array_shape(x.shape, w.shape, stride, pad), x.dtype, _kept)


def conv2d_relu_maxpool2d_forward(x, w, b, stride, pad, pool_kernel, pool_stride, out,
                                  argmax_out):
    """out = maxpool(relu(conv(x, w) + b)), argmax_out as relu_maxpool2d_forward's."""
    check_conv_pool("conv2d_relu_maxpool2d_forward", x, w, b, stride, pad, pool_kernel,
                    pool_stride, out, argmax_out)
    if out.size:
        y = _conv_out(x, w, stride, pad)
        _launch_forward(x, w, b, stride, pad, y)  # (checked once, above)
        _launch_relu_maxpool(y, pool_kernel, pool_stride, out, argmax_out)
    return out


def conv2d_relu_maxpool2d_backward(x, w, dy, argmax, out, stride, pad, dw_out, db_out,
                                   dx_out):
    """dw_out += dL/dw, db_out += dL/db (None: not wanted), dx_out = dL/dx (None:
    not wanted)."""
    check_conv_pool_backward("conv2d_relu_maxpool2d_backward", x, w, dy, argmax, out, stride,
                             pad, dw_out, db_out, dx_out)
    if x.shape[0] == 0 or dw_out.size == 0:
        return
    dense = _conv_out(x, w, stride, pad)
    _launch_relu_unpool(dy, argmax, out, dense)
    _launch_backward_weight(x, dense, stride, pad, dw_out, db_out)
    if dx_out is not None:
        _launch_backward_input(dense, w, stride, pad, dx_out)
