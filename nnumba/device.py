"""Devices: which kernel set runs an array, and moves between host and device.

Two built-in devices, registered through the ``nnumba_register_devices`` hook
as a plugin's would be: ``"cpu"`` (numpy arrays, the @njit kernels; always
there) and ``"cuda"`` (numba.cuda device arrays, the kernels in
nnumba.kernels.cuda). CUDA needs the maintained ``numba-cuda`` package
(``pip install "nnumba[cuda]"``) and an NVIDIA GPU, or the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before numba.cuda is imported). Asking for CUDA
where it is not available raises :class:`DeviceUnavailableError` saying why:
never a silent fallback to the CPU.

numba.cuda is imported only when CUDA is asked for or described: the CPU path
neither needs numba-cuda nor pays the import.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform

import numpy as np

from .errors import NnumbaError
from .hookspecs import hookimpl

INSTALL_HINT = 'pip install "nnumba[cuda]"'


class DeviceUnavailableError(NnumbaError, RuntimeError):
    """A device was asked for that this machine cannot run."""


class DeviceError(NnumbaError, ValueError):
    """Something cannot run on (or move to) the device asked for."""


class Device:
    """A compute device: ``available()``, ``describe()``, and array moves."""
    name = ""
    is_cuda = False

    def available(self) -> bool:
        return self.unavailable_reason() is None

    def unavailable_reason(self) -> str | None:
        return None

    def require(self) -> "Device":
        """Return self, or raise DeviceUnavailableError saying why it cannot run."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise DeviceUnavailableError(f"device {self.name!r} is not available: {reason}")
        return self

    def describe(self) -> dict:
        return {"name": self.name, "available": self.available()}

    def __deepcopy__(self, memo):  # one object per device: copied models share it
        return self

    def __repr__(self):
        return f"Device({self.name!r})"


class CPUDevice(Device):
    name = "cpu"

    def describe(self) -> dict:
        import numba
        return {"name": "cpu", "available": True, "processor": platform.processor() or
                platform.machine(), "cores": os.cpu_count(), "threads": numba.get_num_threads()}

    def to_device(self, a):
        return to_host(a)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype)


class CUDADevice(Device):
    """The current CUDA device of numba-cuda (CUDA_VISIBLE_DEVICES picks it)."""
    name = "cuda"
    is_cuda = True

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("numba_cuda") is None:
            return (f"the numba-cuda package is not installed ({INSTALL_HINT}; "
                    f"numba's own built-in CUDA target is deprecated and not used)")
        cuda = _cuda()
        if simulator():
            return None
        try:
            if cuda.is_available():
                return None
        except Exception as exc:  # noqa: BLE001 - a broken driver says why here
            return (f"numba-cuda could not initialise CUDA ({type(exc).__name__}: "
                    f"{' '.join(str(exc).split())})")
        error = None
        try:
            error = cuda.cuda_error()
        except Exception:  # noqa: BLE001
            pass
        why = f" ({' '.join(str(error).split())})" if error else ""
        return (f"numba-cuda found no usable NVIDIA GPU or CUDA driver{why}; "
                f"set NUMBA_ENABLE_CUDASIM=1 for the (very slow) CUDA simulator")

    def describe(self) -> dict:
        info = {"name": "cuda", "available": False}
        reason = self.unavailable_reason()
        if importlib.util.find_spec("numba_cuda") is not None:
            info["numba_cuda"] = _version("numba-cuda")
            info["simulator"] = simulator()
        if reason is not None:
            info["reason"] = reason
            return info
        info["available"] = True
        cuda = _cuda()
        if simulator():
            info["gpu"] = "CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
            return info
        dev = cuda.get_current_device()
        name = dev.name
        info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        info["compute_capability"] = ".".join(map(str, dev.compute_capability))
        for key, get in (("driver_cuda_version", lambda: cuda.driver.get_version()),
                         ("runtime_cuda_version", lambda: cuda.runtime.get_version())):
            try:
                info[key] = ".".join(map(str, get()))
            except Exception:  # noqa: BLE001 - optional detail
                pass
        try:
            free, total = cuda.current_context().get_memory_info()
            info["memory_gib"] = round(total / 2**30, 1)
        except Exception:  # noqa: BLE001
            pass
        return info

    def to_device(self, a):
        """A device copy of host array ``a`` (C-contiguous); device arrays pass through."""
        if is_device_array(a):
            return a
        return _cuda().to_device(np.ascontiguousarray(a))

    def empty(self, shape, dtype):
        return _cuda().device_array(shape, dtype)

    def zeros(self, shape, dtype):
        out = self.empty(shape, dtype)
        from .kernels.cuda.arrays import fill
        return fill(out, 0)


CPU = CPUDevice()
CUDA = CUDADevice()
BUILTIN = {"cpu": CPU, "cuda": CUDA}


@hookimpl
def nnumba_register_devices():
    return dict(BUILTIN)


def get_device(device="cpu") -> Device:
    """The registered Device for a name (or a Device itself), checked to be usable:
    raises DeviceUnavailableError (never falls back) when it is not."""
    if isinstance(device, Device):
        return device.require()
    if not isinstance(device, str):
        raise TypeError(f"a device is a name such as 'cpu' or 'cuda', got {device!r}")
    name = device.strip().lower()
    if name in BUILTIN:
        return BUILTIN[name].require()
    from .registry import get_registry
    return get_registry().get("device", name).require()


def device_names() -> list[str]:
    from .registry import get_registry
    return list(get_registry().entries("device"))


# ---- arrays ----------------------------------------------------------------

def _cuda():
    from numba import config, cuda
    if "NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS" not in os.environ:
        # A mini-batch's small layers launch small grids by nature: numba would warn
        # on each new call site (the user's own setting wins).
        config.CUDA_LOW_OCCUPANCY_WARNINGS = 0
    return cuda


def simulator() -> bool:
    """True when numba.cuda runs the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def is_device_array(a) -> bool:
    """True for a numba.cuda device array (or the simulator's stand-in for one)."""
    if isinstance(a, np.ndarray) or a is None:
        return False
    module = type(a).__module__
    if not module.startswith("numba"):
        return False
    _cuda()
    if simulator():
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
        return isinstance(a, FakeCUDAArray)
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    return isinstance(a, DeviceNDArray)


def as_device_array(a):
    """Another library's CUDA array (anything with ``__cuda_array_interface__``, e.g.
    CuPy or torch on CUDA) as a numba device array without a copy; numba device
    arrays pass through; anything else is returned unchanged."""
    if is_device_array(a) or not hasattr(a, "__cuda_array_interface__"):
        return a
    return _cuda().as_cuda_array(a)


def to_device(a, device="cuda"):
    """``a`` on ``device``: a host array copied to the GPU for "cuda", a device
    array copied to the host for "cpu"; arrays already there pass through."""
    return get_device(device).to_device(a)


def to_host(a) -> np.ndarray:
    """A numpy array: device arrays are copied to the host, numpy arrays pass through."""
    if isinstance(a, np.ndarray):
        return a
    a = as_device_array(a)
    if is_device_array(a):
        return a.copy_to_host()
    return np.asarray(a)


def where(a) -> str:
    """"cuda" for a device array, "cpu" otherwise."""
    return "cuda" if is_device_array(as_device_array(a)) else "cpu"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    """numba, numba-cuda and CUDA versions, without importing numba.cuda unless
    numba-cuda is installed."""
    import numba
    out = {"numba": numba.__version__, "numba_cuda": _version("numba-cuda")}
    for dist in ("cuda-bindings", "nvidia-cuda-runtime", "nvidia-nvvm"):
        v = _version(dist)
        if v:
            out[dist.replace("-", "_")] = v
    return out
