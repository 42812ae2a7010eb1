"""A device registered for one test: the CPU set's kernels, some replaced by source
code of the test's (a kernel-set module written into a temporary folder)."""
import contextlib
import itertools
import sys
import textwrap

import nnumba
from nnumba.device import CPUDevice

_count = itertools.count()


@contextlib.contextmanager
def device_with_kernels(tmp_path, source, doc="A throw-away test device."):
    """Register a CPUDevice whose kernel set is the CPU set with ``source`` applied
    (``cpu``, ``np`` and ``functools`` in scope); yields its name, unregisters it."""
    k = next(_count)
    modname = f"throwaway_ks_{k}"
    (tmp_path / f"{modname}.py").write_text(
        "import functools\nimport numpy as np\n"
        "from nnumba.kernels import KERNELS\nfrom nnumba.kernels import cpu\n"
        "globals().update({n: getattr(cpu, n) for n in KERNELS})\n" + textwrap.dedent(source))
    sys.path.insert(0, str(tmp_path))
    name, plugin = f"throwaway{k}", f"throwaway-plugin{k}"
    cls = type(f"Throwaway{k}", (CPUDevice,), {"__doc__": doc, "name": name,
                                               "kernel_set": modname})

    class Plugin:
        @staticmethod
        @nnumba.hookimpl
        def nnumba_register_devices():
            return {name: cls()}

    nnumba.register_plugin(Plugin, plugin)
    try:
        yield name
    finally:
        nnumba.unregister_plugin(plugin)
        sys.path.remove(str(tmp_path))
        sys.modules.pop(modname, None)
