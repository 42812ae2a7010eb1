"""The layer kit's look at a layer's own CPU kernels: numba keys their disk cache by
their own file only, so a module whose cached kernels compile formulas of another file
needs ``stamp(globals(), Path(__file__).parent)`` (docs/plugins.md), or an edit of
that file leaves numba loading the old machine code; and a layer that calls kernels
of its own names the devices they run on."""
from __future__ import annotations

import sys
import warnings

from ..kernels.cache_stamp import SOURCES


def check_stamped(layer_cls):
    """Warn where the module of ``layer_cls``'s own CPU kernels (``devices["cpu"]``,
    imported by the checks before) holds cached kernels without a stamp while it
    compiles functions of another module (a formula file)."""
    devices = getattr(layer_cls, "devices", None)
    module = sys.modules.get(devices.get("cpu", "")) if isinstance(devices, dict) else None
    if module is None:
        return
    jitted = [obj for obj in vars(module).values() if hasattr(obj, "py_func")]
    foreign = sorted({f"{obj.py_func.__module__}.{obj.py_func.__name__}" for obj in jitted
                      if obj.py_func.__module__ != module.__name__
                      and obj.py_func.__module__.split(".")[0] not in ("numba", "nnumba")})
    unstamped = [obj.py_func.__name__ for obj in jitted if _unstamped(obj)]
    if foreign and unstamped:
        warnings.warn(f"{layer_cls.__name__}: the cached kernels of {module.__name__} "
                      f"({', '.join(unstamped)}) compile {', '.join(foreign)} from another "
                      f"file, yet numba's disk cache follows their own file only: an edit "
                      f"there would load stale machine code. End {module.__name__} with "
                      f"stamp(globals(), Path(__file__).parent) (from "
                      f"nnumba.kernels.cache_stamp import stamp; docs/plugins.md)",
                      stacklevel=3)


def check_devices_named(layer_cls):
    """Warn where a layer that names no ``devices`` (any: it computes through the
    kernel set) calls numba CPU kernels of its module: a model moved to a GPU would
    hand them device arrays (numba's bare "can't unbox array")."""
    if getattr(layer_cls, "devices", None) is not None:
        return
    module = sys.modules.get(layer_cls.__module__)
    called = {name for klass in layer_cls.__mro__ if klass.__module__ == layer_cls.__module__
              for f in vars(klass).values() if hasattr(f, "__code__")
              for name in f.__code__.co_names}  # the globals its methods read
    # (no module where a file was loaded by path without sys.modules: no globals to read)
    jitted = sorted(name for name, obj in (vars(module) if module is not None else {}).items()
                    if name in called and type(obj).__name__ == "CPUDispatcher"
                    and getattr(obj.py_func, "__module__", None) == layer_cls.__module__)
    if jitted:
        warnings.warn(f"{layer_cls.__name__} names no devices, yet calls CPU kernels of "
                      f"its own ({', '.join(jitted[:4])}): set devices = (\"cpu\",) (or a "
                      f"module per device, docs/plugins.md, \"Own kernels on every "
                      f"device\"); on a GPU they would get device arrays", stacklevel=3)


def _unstamped(dispatcher) -> bool:
    """Whether a cached dispatcher's disk-cache stamp holds no sources hash (numba's
    private layout; where it differs, nothing is said)."""
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    stamp = getattr(cache_file, "_source_stamp", None)
    if stamp is None:
        return False  # not cached, or another numba
    return not (isinstance(stamp, tuple) and len(stamp) == 2 and isinstance(stamp[1], str)
                and len(stamp[1]) == len(SOURCES))
