"""The checks before a convolution or pooling kernel runs: numba checks no bounds,
and these kernels index by the arguments' shapes, so an output of another batch
size, a stride of 0, a negative pad, an argmax outside its plane or a Fortran-order
output read or wrote past an array (a segfault), or computed garbage (fuzz round 46)."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from .geometry import conv2d_output_array_shape, pool2d_output_shape


def _pair(kernel: str, name: str, value, least: int) -> tuple[int, int]:
    """(h, w) from an int or a pair of ints, each at least ``least``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  and v >= least for v in items):
        raise ShapeError(f"{kernel}: {name} is an int or a pair of ints of at least {least}, "
                         f"got {value!r:.60}")
    return int(items[0]), int(items[1])


def check_arrays(kernel: str, inputs, outputs) -> None:
    """Float arrays of one dtype (None skipped); the outputs C-contiguous and writable."""
    arrays = [a for a in (*inputs, *outputs) if a is not None]
    dtype = np.dtype(arrays[0].dtype)
    if dtype not in (np.float32, np.float64) or any(a.dtype != dtype for a in arrays):
        raise DTypeError(f"{kernel}: takes float32 or float64 arrays of one dtype, got "
                         f"{', '.join(np.dtype(a.dtype).name for a in arrays)}")
    for a in outputs:
        if a is not None:
            _output(kernel, a)


def _output(kernel: str, a) -> None:
    if isinstance(a, np.ndarray) and not (a.flags.c_contiguous and a.flags.writeable):
        raise ShapeError(f"{kernel}: an output must be C-contiguous and writable (an array "
                         f"from self._buffer), got shape {a.shape} strides {a.strides}")


def conv_shape(kernel: str, x_shape, w_shape, stride, pad) -> tuple:
    """(N, D, Ho, Wo) of x (N, C, H, W) convolved by w (D, C, kh, kw), checked."""
    _pair(kernel, "stride", stride, 1)
    _pair(kernel, "pad", pad, 0)
    if len(x_shape) != 4 or len(w_shape) != 4 or x_shape[1] != w_shape[1]:
        raise ShapeError(f"{kernel}: takes an input (N, C, H, W) and weights (D, C, kh, kw), "
                         f"got {tuple(x_shape)} and {tuple(w_shape)}")
    shape = conv2d_output_array_shape(x_shape, w_shape, stride, pad)
    if min(shape[2:]) < 1:
        raise ShapeError(f"{kernel}: weights {tuple(w_shape)} with pad {pad} do not fit the "
                         f"input {tuple(x_shape)}")
    return shape


def check_conv(kernel: str, x_shape, w_shape, stride, pad, y_shape) -> None:
    """x (N, C, H, W), w (D, C, kh, kw) and y the output of that convolution."""
    if tuple(y_shape) != conv_shape(kernel, x_shape, w_shape, stride, pad):
        raise ShapeError(f"{kernel}: input {tuple(x_shape)}, weights {tuple(w_shape)}, stride "
                         f"{stride} and pad {pad} do not give the output {tuple(y_shape)}")


def check_pool(kernel: str, x_shape, size, stride, y_shape) -> None:
    """x (N, C, H, W) and y (N, C, Ho, Wo) the unpadded pool of that window."""
    kh, kw = _pair(kernel, "kernel", size, 1)
    sh, sw = _pair(kernel, "stride", stride, 1)
    if len(x_shape) != 4 or len(y_shape) != 4 or tuple(y_shape[:2]) != tuple(x_shape[:2]) or \
            kh > x_shape[2] or kw > x_shape[3] or \
            tuple(y_shape[2:]) != pool2d_output_shape(x_shape[2], x_shape[3], (kh, kw), (sh, sw)):
        raise ShapeError(f"{kernel}: input {tuple(x_shape)}, window {size} and stride {stride} "
                         f"do not give the output {tuple(y_shape)}")


def check_argmax(kernel: str, argmax, y_shape, plane: int | None = None) -> None:
    """An int32 or int64 argmax of the pooled output's shape; with ``plane``, every
    index within a plane of that many values (a backward adds at them)."""
    if tuple(argmax.shape) != tuple(y_shape) or np.dtype(argmax.dtype) not in (np.int32, np.int64):
        raise ShapeError(f"{kernel}: argmax must be int32 or int64 of the output's shape "
                         f"{tuple(y_shape)}, got {np.dtype(argmax.dtype).name} {tuple(argmax.shape)}")
    if plane is None:  # (the forward's output)
        _output(kernel, argmax)
    elif argmax.size and (argmax.min() < 0 or argmax.max() >= plane):
        raise ShapeError(f"{kernel}: argmax holds an index outside its plane of {plane} values")
