"""The checks before a convolution or pooling kernel runs: numba checks no bounds,
and these kernels index by the arguments' shapes, so an output of another batch
size, a stride of 0, a negative pad, an argmax outside its plane or a Fortran-order
output read or wrote past an array (a segfault), or computed garbage (fuzz round 46)."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from .flat import FLOATS, c_contiguous, overlap, writable
from .geometry import conv2d_output_array_shape, pool2d_output_shape


def _pair(kernel: str, name: str, value, least: int) -> tuple[int, int]:
    """(h, w) from an int or a pair of ints, each at least ``least``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  and v >= least for v in items):
        raise ShapeError(f"{kernel}: {name} is an int or a pair of ints of at least {least}, "
                         f"got {value!r:.60}")
    return int(items[0]), int(items[1])


def check_arrays(kernel: str, inputs: dict, outputs: dict, optional=()) -> None:
    """``{name: array}``: arrays (None only for a name in ``optional``) of one float
    dtype; the outputs C-contiguous, writable and apart from every input and from each
    other (a kernel reads its inputs while it writes: on the device other threads read
    what one overwrote, fuzz round 48; dw and db in one buffer summed into each other)."""
    for name, a in {**inputs, **outputs}.items():
        if not (a is None and name in optional) and (
                isinstance(a, np.generic) or not hasattr(a, "shape") or not hasattr(a, "dtype")):
            raise DTypeError(f"{kernel}: {name} must be an array"
                             f"{' or None' if name in optional else ''}, got a "
                             f"{type(a).__name__}")
    arrays = [(name, a) for name, a in {**inputs, **outputs}.items() if a is not None]
    dtype = arrays[0][1].dtype
    if dtype not in FLOATS or any(a.dtype != dtype for _, a in arrays):
        raise DTypeError(f"{kernel}: takes float32 or float64 arrays of one dtype, got "
                         f"{', '.join(f'{name} {np.dtype(a.dtype).name}' for name, a in arrays)}")
    outs = [(name, out) for name, out in outputs.items() if out is not None]
    for i, (name, out) in enumerate(outs):
        _output(kernel, out)
        # (device arrays' address ranges are compared: interleaved views that share no
        # element meet too)
        clash = next((other for other, a in [*inputs.items(), *outs[i + 1:]]
                      if a is not None and overlap(out, a)), None)
        if clash is not None:
            raise ShapeError(f"{kernel}: the output {name} may share memory with {clash}; "
                             f"write into an array of its own (self._buffer(...))")


def _output(kernel: str, a) -> None:
    if not (c_contiguous(a) and writable(a)):
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
    # (a device's kernel guards each index as it reads it: no copy to the host here)
    elif isinstance(argmax, np.ndarray) and argmax.size and \
            (argmax.min() < 0 or argmax.max() >= plane):
        raise ShapeError(f"{kernel}: argmax holds an index outside its plane of {plane} values")


def check_channel_bias(kernel: str, b, channels: int) -> None:
    """A bias (or its gradient) of one value per output channel, or None."""
    if b is not None and tuple(b.shape) != (channels,):
        raise ShapeError(f"{kernel}: the bias (or its gradient) must have shape ({channels},), "
                         f"one per output channel, got {tuple(b.shape)}")


def check_unpool(kernel: str, dy, y, dx) -> None:
    """A max-pool's backward: dy (N, C, Ho, Wo), the forward's output y of its shape,
    dx (N, C, H, W)."""
    if dy.ndim != 4 or dx.ndim != 4 or tuple(dx.shape[:2]) != tuple(dy.shape[:2]) or \
            tuple(y.shape) != tuple(dy.shape):
        raise ShapeError(f"{kernel}: takes dy (N, C, Ho, Wo), the forward's output of its "
                         f"shape and dx (N, C, H, W), got {tuple(dy.shape)}, {tuple(y.shape)} "
                         f"and {tuple(dx.shape)}")


def check_adaptive(kernel: str, x, y) -> None:
    """An adaptive pool's x (N, C, H, W) and y (N, C, Ho, Wo), none empty."""
    if x.ndim != 4 or y.ndim != 4 or tuple(x.shape[:2]) != tuple(y.shape[:2]) or \
            0 in x.shape or 0 in y.shape:
        raise ShapeError(f"{kernel}: takes x (N, C, H, W) and y (N, C, Ho, Wo), got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")


def check_conv_pool(kernel: str, x, w, b, stride, pad, pool_kernel, pool_stride, out,
                    argmax) -> tuple:
    """The fused convolution + ReLU + max-pool forward's arguments; returns the
    convolution's output shape."""
    check_arrays(kernel, {"x": x, "w": w, "b": b}, {"out": out}, optional={"b"})
    shape = conv_shape(kernel, x.shape, w.shape, stride, pad)
    check_pool(kernel, shape, pool_kernel, pool_stride, out.shape)
    check_argmax(kernel, argmax, out.shape)
    check_channel_bias(kernel, b, w.shape[0])
    return shape


def check_conv_pool_backward(kernel: str, x, w, dy, argmax, out, stride, pad, dw, db,
                             dx) -> tuple:
    """Its backward's: dy and out of the forward's output shape, dw of w's, db (D,)
    and dx of x's (None: not wanted); returns the convolution's output shape."""
    check_arrays(kernel, {"x": x, "w": w, "dy": dy, "out": out},
                 {"dw_out": dw, "db_out": db, "dx_out": dx}, optional={"db_out", "dx_out"})
    shape = conv_shape(kernel, x.shape, w.shape, stride, pad)
    if tuple(dy.shape) != tuple(out.shape) or dy.ndim != 4 or \
            tuple(dy.shape[:2]) != tuple(shape[:2]) or tuple(dw.shape) != tuple(w.shape) or \
            (dx is not None and tuple(dx.shape) != tuple(x.shape)):
        raise ShapeError(f"{kernel}: dy and out (N, D, Po, Qo) of the forward's output, dw "
                         f"of w's shape, db (D,) and dx of x's: got dy {tuple(dy.shape)}, out "
                         f"{tuple(out.shape)}, dw {tuple(dw.shape)} for x {tuple(x.shape)} "
                         f"and w {tuple(w.shape)}")
    check_channel_bias(kernel, db, w.shape[0])
    check_argmax(kernel, argmax, dy.shape, shape[2] * shape[3])
    return shape
