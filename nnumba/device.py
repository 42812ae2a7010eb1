"""Devices: where arrays live and which kernel set computes on them.

A :class:`Device` carries its kernel set (``device.kernels``: a module exporting
:data:`nnumba.kernels.KERNELS`) and its allocator (``empty``, ``zeros``, moves to
and from the host).  A layer's one body calls ``self.kernels`` and
``self._buffer``, so it runs on whatever device its model was moved to, and
:func:`device_of` is the one place that asks which device an array is on.

Devices register through the ``nnumba_register_devices`` hook, the built-ins as a
plugin's would: ``"cpu"`` (numpy arrays, the @njit kernels; always there) and
``"cuda"`` (numba.cuda device arrays).  CUDA needs the maintained ``numba-cuda``
package (``pip install "nnumba[cuda]"``) and an NVIDIA GPU, or the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before numba.cuda is imported).  Asking for a
device that is not available raises :class:`DeviceUnavailableError` saying why:
never a silent fallback.  numba.cuda is imported only when CUDA is asked for or
described.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
from contextlib import suppress
from functools import cached_property

import numpy as np

from .errors import DeviceError, DeviceUnavailableError, NnumbaError, RegistryError
from .hookspecs import hookimpl
from . import registry

INSTALL_HINT = 'pip install "nnumba[cuda]"'


class Device:
    """A compute device.  Subclasses name their kernel set's module in
    ``kernel_set`` and implement the array methods."""
    name = ""
    kernel_set = ""   # importable module exporting nnumba.kernels.KERNELS

    @cached_property
    def kernels(self):
        """The kernel set (imported on first use), checked to export every kernel, each
        taking the CPU set's arguments.  What is wrong with it is a DeviceError that
        names the device and, on the command line, the plugin that registered it (a
        bug in that plugin: status 1)."""
        from .kernels import KERNELS, signatures
        where = f"device {self.name!r}: its kernel set {self.kernel_set!r}"
        broken = self.plugin_error
        if not isinstance(self.kernel_set, str) or not self.kernel_set.strip():
            raise broken(f"{where} names no module: set kernel_set to the importable module "
                         f"of its kernel set (docs/plugins.md, Devices)")
        try:
            kernels = self._load_kernels()
        except NnumbaError:
            raise
        except Exception as exc:  # a plugin's kernel_set that does not import
            raise broken(f"{where} does not import ({type(exc).__name__}: {exc})") from exc
        missing = [k for k in KERNELS if not callable(getattr(kernels, k, None))]
        if missing:
            raise broken(f"{where} lacks {len(missing)} kernel(s) of nnumba.kernels.KERNELS: "
                         f"{', '.join(missing)}")
        misfits = signatures.misfits(kernels)
        if misfits:
            raise broken(f"{where} has kernels that cannot take the CPU set's arguments (the "
                         f"required ones by position, the others by name): "
                         f"{'; '.join(misfits)}")
        return kernels

    def plugin_error(self, message: str, kind=None) -> NnumbaError:
        """A ``kind`` (DeviceError) carrying the plugin that registered this device."""
        error = (kind or DeviceError)(message)
        with suppress(Exception):  # not registered (a Device made by hand): no plugin
            entry = registry.get_registry().entry("device", self.name)
            if entry.obj is self and not entry.builtin:
                error.plugin = entry.plugin
        return error

    def _load_kernels(self):
        return importlib.import_module(self.kernel_set)

    def entry_in(self, names):
        """The name in ``names`` (a layer's ``devices``) this device answers to, or None."""
        return self.name if self.name in names else None

    def own_kernels(self, modules, who: str):
        """``who``'s own kernels here: the module that ``modules`` ({device name: module
        name}, a layer's ``devices``) names for this device (:meth:`entry_in`),
        imported on first use (a CUDA module only on CUDA)."""
        name = self.entry_in(modules) if isinstance(modules, dict) else None
        if name is None:
            raise DeviceError(f"{who}: self.own takes devices = {{device name: module of its "
                              f"own kernels there}}, with one for {self.name!r}; got {modules!r}")
        try:
            return importlib.import_module(modules[name])
        except Exception as exc:  # a wrong module name, or a kernel that does not compile
            raise DeviceError(f"{who}: its kernels for {self.name!r}, {modules[name]!r}, do "
                              f"not import ({type(exc).__name__}: {exc})") from exc

    def _missing(self, method):
        return DeviceError(f"device {self.name!r} ({type(self).__name__}) does not implement "
                           f"{method}(); a Device subclass implements owns, empty, to_device, "
                           f"to_host and contiguous (or subclasses CPUDevice for numpy arrays)")

    # ---- availability ----------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        return None

    def available(self) -> bool:
        return self.unavailable_reason() is None

    def require(self) -> "Device":
        """Return self, or raise DeviceUnavailableError saying why it cannot run."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise DeviceUnavailableError(f"device {self.name!r} is not available: {reason}")
        return self

    def describe(self) -> dict:
        return {"name": self.name, "available": self.available()}

    # ---- arrays -----------------------------------------------------------------
    def owns(self, a) -> bool:
        """Whether ``a`` is an array of this device."""
        raise self._missing("owns")

    def empty(self, shape, dtype):
        raise self._missing("empty")

    def zeros(self, shape, dtype):
        a = self.empty(shape, dtype)
        self.kernels.fill(a, 0)  # a plugin's fill need not return its array
        return a

    def to_device(self, a):
        """``a`` (a host array, or already this device's) as this device's array."""
        raise self._missing("to_device")

    def to_host(self, a) -> np.ndarray:
        raise self._missing("to_host")

    def contiguous(self, a):
        """``a`` as a C-contiguous array of this device (a copy where needed)."""
        return a

    def free_memory(self) -> int:
        """Bytes this device can still allocate (an estimate)."""
        return 1 << 62

    def __deepcopy__(self, memo):  # one object per device: copied models share it
        return self

    def __reduce__(self):  # pickled by name (scikit-learn pickles estimators)
        return (_registered, (self.name,))

    def __repr__(self):
        return f"Device({self.name!r})"


class CPUDevice(Device):
    """numpy arrays, computed by numba's parallel CPU kernels on this machine's cores."""
    name = "cpu"
    kernel_set = "nnumba.kernels.cpu"

    def entry_in(self, names):  # numpy arrays: what runs on "cpu" runs here
        return super().entry_in(names) or ("cpu" if "cpu" in names else None)

    def describe(self) -> dict:
        import numba
        return {"name": self.name, "available": True, "processor": platform.processor() or
                platform.machine(), "cores": os.cpu_count(), "threads": numba.get_num_threads()}

    def owns(self, a) -> bool:
        return isinstance(a, np.ndarray)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype)

    def to_device(self, a):
        return to_host(a)

    def to_host(self, a):
        return a

    def contiguous(self, a):  # (np.ascontiguousarray would make a 0-d array 1-d)
        return a if type(a) is np.ndarray and a.flags.c_contiguous else np.ascontiguousarray(a)

    def free_memory(self) -> int:
        """Linux's MemAvailable; else the physical memory."""
        with suppress(OSError, ValueError, IndexError):
            with open("/proc/meminfo") as info:
                for line in info:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return 1 << 62


class CUDADevice(Device):
    """The current CUDA device of numba-cuda (CUDA_VISIBLE_DEVICES picks it)."""
    name = "cuda"
    kernel_set = "nnumba.kernels.cuda"

    def _load_kernels(self):
        _cuda()
        return super()._load_kernels()

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
        with suppress(Exception):
            error = cuda.cuda_error()
        why = f" ({' '.join(str(error).split())})" if error else ""
        return (f"numba-cuda found no usable NVIDIA GPU or CUDA driver{why}; "
                f"set NUMBA_ENABLE_CUDASIM=1 for the (very slow) CUDA simulator")

    def describe(self) -> dict:
        reason = self.unavailable_reason()
        info = {"name": "cuda", "available": reason is None}
        if importlib.util.find_spec("numba_cuda") is not None:
            info["numba_cuda"] = _version("numba-cuda")
            info["simulator"] = simulator()
        if reason is not None:
            info["reason"] = reason
            return info
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
            with suppress(Exception):  # an optional detail
                info[key] = ".".join(map(str, get()))
        with suppress(Exception):
            info["memory_gib"] = round(cuda.current_context().get_memory_info()[1] / 2**30, 1)
        return info

    def owns(self, a) -> bool:
        if isinstance(a, np.ndarray) or a is None or not type(a).__module__.startswith("numba"):
            return False
        _cuda()
        if simulator():
            from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
            return isinstance(a, FakeCUDAArray)
        from numba.cuda.cudadrv.devicearray import DeviceNDArray
        return isinstance(a, DeviceNDArray)

    def empty(self, shape, dtype):
        return _cuda().device_array(shape, dtype)

    def to_device(self, a):
        """A device copy of host array ``a``; device arrays (numba's, or another
        library's with ``__cuda_array_interface__``) pass through without a copy."""
        if hasattr(a, "__cuda_array_interface__") and not self.owns(a):
            a = _cuda().as_cuda_array(a)
        if self.owns(a):
            return a
        if isinstance(a, np.ma.MaskedArray) and np.ma.count_masked(a):  # the copy drops it
            raise DeviceError(f"to_device: a masked array with {np.ma.count_masked(a)} masked "
                              f"value(s): fill them (a.filled(value)) or drop those samples")
        try:  # a 0-d array stays 0-d (np.ascontiguousarray alone makes it 1-d)
            host = np.asarray(a) if np.ndim(a) == 0 else np.ascontiguousarray(a)
        except (TypeError, ValueError) as exc:  # a ragged list: numpy's first sentence
            why = " ".join(str(exc).split(".")[0].split())[:120]
            raise DeviceError(f"to_device: cannot make an array of {type(a).__name__} "
                              f"({why})") from None
        if host.dtype.kind not in "biufc":  # the simulator copied None and strings over
            raise DeviceError(f"to_device: a cuda array holds numbers, got dtype "
                              f"{host.dtype}")
        return _cuda().to_device(host)

    def to_host(self, a):
        return a.copy_to_host()

    def contiguous(self, a):
        if not a.is_c_contiguous():
            raise DeviceError("expected a C-contiguous device array")
        return a

    def free_memory(self) -> int:
        try:
            free, _ = _cuda().current_context().get_memory_info()
        except Exception:  # noqa: BLE001 - unknown: assume a small card
            return 2**31
        return int(min(free, 2**62))  # the simulator says infinity


CPU = CPUDevice()
CUDA = CUDADevice()
registry.BASES["device"] = Device  # what every registered device is an instance of
BUILTIN = {"cpu": CPU, "cuda": CUDA}


nnumba_register_devices = hookimpl(lambda: dict(BUILTIN))


def get_device(device="cpu") -> Device:
    """The registered Device for a name (or a Device), usable: else DeviceUnavailableError."""
    if isinstance(device, Device):
        return device.require()
    if not isinstance(device, str):
        raise DeviceError(f"a device is a name such as 'cpu' or 'cuda', got "
                          f"{type(device).__name__} {device!r:.60}")
    name = device.strip().lower()
    base, colon, index = name.partition(":")
    # PyTorch's 'cuda:0' (the registry would read 'cuda' as a plugin's prefix and advise
    # installing one) and 'gpu' (whose nearest name is 'cpu'): name the built-in device
    if colon and index.isdigit() and base in device_names():
        gpu = "; choose the GPU with CUDA_VISIBLE_DEVICES (such as CUDA_VISIBLE_DEVICES=1)"
        raise RegistryError(f"unknown device {device!r}: nnumba devices take no index; name "
                            f"the device alone ({base!r}){gpu * (base == 'cuda')}")
    if name == "gpu" and "cuda" in device_names():
        raise RegistryError(f"unknown device {device!r}: nnumba's NVIDIA GPU device is 'cuda'")
    return registry.get_registry().get("device", name).require()


def _registered(name: str) -> Device:
    """The registered device of that name, available or not (for unpickling)."""
    return BUILTIN[name] if name in BUILTIN else registry.get_registry().get("device", name)


def device_names() -> list[str]:
    return list(registry.get_registry().entries("device"))


def device_of(a) -> Device | None:
    """The device whose array ``a`` is, or None: the one place that asks."""
    if isinstance(a, np.ndarray):
        return CPU
    for entry in registry.get_registry().entries("device").values():
        with suppress(Exception):  # a device that cannot tell does not own it
            if entry.obj is not CPU and entry.obj.owns(a):
                return entry.obj
    return None


def may_share_memory(a, b) -> bool:
    """Whether arrays ``a`` and ``b`` (host or CUDA, contiguous) may overlap in memory;
    False for anything that is not an array."""
    if type(a) is np.ndarray and type(b) is np.ndarray:  # the CPU's, every step: fast
        return np.may_share_memory(a, b)
    # numba's CUDA simulator wraps a host array (_ary) and has no CUDA interface
    a, b = (getattr(v, "_ary", v) if not isinstance(v, np.ndarray) else v for v in (a, b))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.may_share_memory(a, b)
    spans = []
    for x in (a, b):
        face = getattr(x, "__cuda_array_interface__", None)
        if face is None:
            return False
        spans.append(_span(face))
    (a0, a1), (b0, b1) = spans
    return a0 < b1 and b0 < a1


def _span(face) -> tuple[int, int]:
    """[first byte, past the last) of a CUDA array interface, through its strides (a
    strided view reaches past data + nbytes)."""
    start, itemsize = face["data"][0], np.dtype(face["typestr"]).itemsize
    shape = face["shape"]
    if 0 in shape:
        return start, start
    strides = face.get("strides") or [itemsize * int(np.prod(shape[i + 1:], dtype=np.int64))
                                      for i in range(len(shape))]
    low = sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
    high = sum(max(0, (n - 1) * s) for n, s in zip(shape, strides))
    return start + low, start + high + itemsize


def to_device(a, device="cuda"):
    """``a`` on ``device``: a host array copied to the GPU for "cuda", a device
    array copied to the host for "cpu"; arrays already there pass through."""
    return get_device(device).to_device(a)


def to_host(a) -> np.ndarray:
    """A numpy array: device arrays are copied to the host, numpy arrays pass through."""
    device = device_of(a)
    if device is None and hasattr(a, "__cuda_array_interface__"):
        return CUDA.to_host(CUDA.to_device(a))
    return device.to_host(a) if device is not None else np.asarray(a)


# ---- CUDA details ----------------------------------------------------------------

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
    out.update({dist.replace("-", "_"): v for dist in
                ("cuda-bindings", "nvidia-cuda-runtime", "nvidia-nvvm") if (v := _version(dist))})
    return out
