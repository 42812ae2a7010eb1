"""numba's CUDA simulator held to what a GPU's device arrays can do.

The simulator stands a numpy array in for each device array and forwards anything
else to it, so numpy arithmetic, comparisons and ``np.where`` on device arrays work
there and fail on a GPU: a layer body that calls numpy passes in the simulator.
Within :func:`real_device_arrays` the simulator's arrays refuse what numba.cuda's
DeviceNDArray does not offer.  The device kit (:func:`nnumba.testing.check_device`)
runs inside it, and so does nnumba's own simulator suite."""
from __future__ import annotations

from contextlib import contextmanager

#: the public names of numba.cuda's DeviceNDArray
DEVICE_ARRAY_API = frozenset({
    "shape", "strides", "dtype", "size", "ndim", "nbytes", "alloc_size", "stream",
    "gpu_data", "T", "bind", "copy_to_device", "copy_to_host", "flags", "getitem",
    "setitem", "is_c_contiguous", "is_f_contiguous", "ravel", "reshape", "split",
    "squeeze", "transpose", "view", "get_ipc_handle", "device_ctypes_pointer",
    "as_cuda_arg", "itemsize"})
# numpy's array protocol: through it numpy would read the simulator's host array
_NUMPY_PROTOCOL = frozenset({"__array__", "__array_interface__", "__array_struct__",
                             "__array_function__", "__array_ufunc__", "__array_priority__"})
_OPERATORS = ("__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__",
              "__pow__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__")


class HostOnlyError(TypeError):
    """A device array used as a numpy array: the simulator would allow it, a GPU not."""


class _NotOnDevice(HostOnlyError, AttributeError):
    """An attribute a device array lacks (an AttributeError too, so that numpy and
    hasattr see no array protocol)."""


@contextmanager
def real_device_arrays():
    """Within the block, the simulator's device arrays refuse numpy's arithmetic,
    comparisons, array protocol and attributes a DeviceNDArray lacks, as on a GPU.
    Nothing changes without the simulator."""
    from numba import config
    if not config.ENABLE_CUDASIM:
        yield
        return
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
    saved = {name: FakeCUDAArray.__dict__[name] for name in ("__getattr__",) + _OPERATORS}
    forward = saved["__getattr__"]

    def getattr_real(self, name):
        if name in DEVICE_ARRAY_API or (name.startswith("_") and name not in _NUMPY_PROTOCOL):
            return forward(self, name)
        raise _NotOnDevice(f"{name!r} is not part of numba.cuda's DeviceNDArray API")

    def operator(name):
        def refuse(self, *args):
            raise HostOnlyError(f"numba.cuda device arrays do no arithmetic or comparison "
                                f"({name}): use a kernel")
        return refuse

    FakeCUDAArray.__getattr__ = getattr_real
    for name in _OPERATORS:
        setattr(FakeCUDAArray, name, operator(name))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(FakeCUDAArray, name, fn)
