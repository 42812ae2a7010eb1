"""The checks before an elementwise or dense kernel (scale, multiply, accumulate, the
activations, sgd_step, matmul and the bias kernels): numba checks
no bounds, and such a kernel loops over its first array's size, so a 2-D array (a
reshape forgotten: `fill` takes any shape) or a shorter second array made it write
rows past the end of the buffer (heap corruption on the CPU, an IndexError in the
CUDA simulator, silent writes on a GPU)."""
import inspect

import numpy as np

from ..device import may_share_memory
from ..errors import DTypeError, ShapeError

#: the dtypes the float kernels compile for (dtype objects: compared with a dtype,
#: faster than numpy's scalar types; these checks run several times a training step)
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_given(kernel: str, *arrays) -> None:
    """DTypeError for an argument that is no array (``multiply(a, 3.0, out)``: the kernel
    read its ndim, a bare AttributeError)."""
    for a in arrays:
        if type(a) is not np.ndarray and (isinstance(a, np.generic) or not hasattr(a, "ndim")):
            raise DTypeError(f"{kernel}: takes arrays, got a {type(a).__name__} ({a!r:.40})")


def writable(a) -> bool:
    """Whether ``a`` can be written (a numba device array always can; a numpy array, a
    memory map included, where its flag says so)."""
    return not isinstance(a, np.ndarray) or a.flags.writeable


def c_contiguous(a) -> bool:
    """Whether ``a``, a numpy or numba device array, is C-contiguous."""
    return a.flags.c_contiguous if isinstance(a, np.ndarray) else \
        getattr(a, "is_c_contiguous", lambda: True)()


def check_fill(a) -> None:
    """fill's array: one contiguous block (C or Fortran order) and writable on every
    device (the CPU filled a strided view that the device's flat kernel cannot; a
    read-only one gave numpy's error)."""
    check_given("fill", a)
    block = c_contiguous(a) or (a.flags.f_contiguous if isinstance(a, np.ndarray) else
                                getattr(a, "is_f_contiguous", lambda: False)())
    if not (block and writable(a)):
        raise ShapeError(f"fill: takes a contiguous, writable array, got shape "
                         f"{tuple(a.shape)} strides {tuple(a.strides)}")


def check_flat(kernel: str, *arrays) -> None:
    """ShapeError unless every array is 1-D and all have one size."""
    check_given(kernel, *arrays)
    size = arrays[0].size
    for a in arrays:
        if a.ndim != 1 or a.size != size:
            shapes = ", ".join(str(tuple(x.shape)) for x in arrays)
            raise ShapeError(f"{kernel}: takes flat (1-D) arrays of one size, got shapes "
                             f"{shapes}; pass a.reshape(a.size) for a contiguous array")


def check_flat_floats(kernel: str, *arrays, outputs: int = 1) -> None:
    """check_flat, one float dtype (float32 or float64) for all, and the last
    ``outputs`` arrays writable: the activations and sgd_step read and write past a
    shorter array, compute garbage from integers (sigmoid of uint8 1 gave 0), and
    numba's own error for a read-only output named no argument (fuzz round 46)."""
    check_flat(kernel, *arrays)
    dtype = arrays[0].dtype
    for a in arrays:
        if a.dtype != dtype or dtype not in FLOATS:
            raise DTypeError(f"{kernel}: takes float32 or float64 arrays of one dtype, got "
                             f"{', '.join(np.dtype(a.dtype).name for a in arrays)}")
    first = len(arrays) - outputs
    for i in range(first, len(arrays)):
        a = arrays[i]
        if not writable(a):
            raise ShapeError(f"{kernel}: its output is read-only; write into an array of "
                             f"its own (self._buffer(...))")
        # in place (scale(a, 2, a)) is fine; shifted, each element read one already written
        for j, b in enumerate(arrays):
            if (j > i or j < first) and overlap(a, b) and (j > i or not _same(a, b)):
                raise ShapeError(f"{kernel}: an output overlaps another argument in memory "
                                 f"other than as that same array (in place); write into an "
                                 f"array of its own")


def check_matmul(a, b, out, trans_a, trans_b) -> None:
    """2-D arrays of one float dtype whose shapes multiply, the output writable and apart
    from both (a read-only memory map was written into, a segfault)."""
    check_given("matmul", a, b, out)
    if a.ndim != 2 or b.ndim != 2 or out.ndim != 2:
        raise ShapeError(f"matmul: takes 2-D arrays, got {tuple(a.shape)}, {tuple(b.shape)} "
                         f"and {tuple(out.shape)}")
    (am, ak), (bk, bn) = (a.shape[::-1] if trans_a else a.shape), \
        (b.shape[::-1] if trans_b else b.shape)
    if am != out.shape[0] or bn != out.shape[1] or ak != bk:
        raise ShapeError(f"matmul: op(a) {am}x{ak} @ op(b) {bk}x{bn} does not give out "
                         f"{out.shape[0]}x{out.shape[1]}")
    dtype = out.dtype
    if dtype not in FLOATS or a.dtype != dtype or b.dtype != dtype:
        raise DTypeError(f"matmul: takes float32 or float64 arrays of one dtype, got "
                         f"{', '.join(np.dtype(x.dtype).name for x in (a, b, out))}")
    if not writable(out):
        raise ShapeError("matmul: its output is read-only; write into an array of its own")
    check_apart("matmul", out, a, b)


def check_apart(kernel: str, out, a, b) -> None:
    """ShapeError where ``out`` overlaps input ``a`` or ``b`` in memory: the kernels
    read their inputs while they write (a matmul into its own input gave the right
    answer at a kit's small sizes and errors of ~190 at 64 x 64)."""
    if overlap(out, a) or overlap(out, b):
        raise ShapeError(f"{kernel}: the output overlaps an input in memory; write into "
                         f"an array of its own (self._buffer(...))")


def _same(a, b) -> bool:
    """Whether a and b are one array's elements in one order (an in-place call)."""
    if a is b:
        return True
    if type(a) is not np.ndarray or type(b) is not np.ndarray:  # device arrays
        a, b = (getattr(v, "_ary", v) for v in (a, b))  # (the CUDA simulator's wrapper)
        face = [getattr(v, "__cuda_array_interface__", None) or v.__array_interface__
                for v in (a, b)]
        return face[0]["data"][0] == face[1]["data"][0] and a.strides == b.strides
    return a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and \
        a.strides == b.strides


def overlap(out, a) -> bool:
    """The spans' test (every matmul: cheap), then numpy's exact one for two views that
    interleave without sharing an element (an RNN's hs[:, 0] and hs[:, 1]); device
    arrays: their address ranges."""
    if type(out) is not np.ndarray or type(a) is not np.ndarray:
        return may_share_memory(out, a)
    if not np.may_share_memory(out, a):  # (numpy's own spans' test: no call in between)
        return False
    try:
        return np.shares_memory(out, a, max_work=10_000)
    except np.exceptions.TooHardError:
        return True


#: the arrays each bias kernel writes, by their place in check_bias's (y, b, *like_y)
_BIAS_OUTPUTS = {"add_bias": (0,), "add_bias_relu": (0,), "accumulate_bias_grad": (1,),
                 "relu_backward_bias_grad": (1, 3)}


def check_bias(kernel: str, y, b, *like_y) -> None:
    """ShapeError unless ``y`` and every array of ``like_y`` are (N, D) and ``b`` (D,)
    (a bias, or its gradient), the bias apart from the others and the kernel's outputs
    writable; DTypeError unless all have one float dtype (float16 crashed numba on the
    CPU and ran on the device)."""
    # (plain loops, no generators: four of these run every training step of an MLP)
    check_given(kernel, y, b, *like_y)
    shape, dtype = y.shape, y.dtype
    bad_shape = y.ndim != 2 or b.ndim != 1 or b.shape[0] != shape[1]
    bad_dtype = dtype not in FLOATS or b.dtype != dtype
    for a in like_y:
        bad_shape, bad_dtype = bad_shape or a.shape != shape, bad_dtype or a.dtype != dtype
    if bad_shape:
        shapes = ", ".join(str(tuple(a.shape)) for a in (y, *like_y))
        raise ShapeError(f"{kernel}: takes (N, D) arrays and a (D,) bias or gradient, got "
                         f"{shapes} and {tuple(b.shape)}")
    if bad_dtype:
        raise DTypeError(f"{kernel}: takes float32 or float64 arrays of one dtype, got "
                         f"{', '.join(np.dtype(a.dtype).name for a in (y, *like_y, b))}")
    arrays = (y, b, *like_y)
    for i in _BIAS_OUTPUTS.get(kernel, ()):
        if not writable(arrays[i]):
            raise ShapeError(f"{kernel}: its output is read-only; write into an array of "
                             f"its own")
    for a in (y, *like_y):
        if overlap(b, a):  # (add_bias(y, y[0]) read a changed row)
            raise ShapeError(f"{kernel}: the bias (or its gradient) overlaps the other "
                             f"arrays in memory; give it an array of its own")


def checked(kernel, name: str, check):
    """``kernel`` (a numba dispatcher; its plain function under NUMBA_DISABLE_JIT) behind
    ``check(name, *arrays)``, with its name, docstring and signature."""
    def run(*arrays):
        check(name, *arrays)
        kernel(*arrays)
    run.__name__ = run.__qualname__ = name
    run.__doc__ = kernel.__doc__
    run.__signature__ = inspect.signature(getattr(kernel, "py_func", kernel))
    return run
