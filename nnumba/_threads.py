"""numba's threading layer, chosen so that nnumba leaves other libraries alone.

numba runs its parallel kernels on the thread pool of one of three layers: tbb,
omp or workqueue.  With omp's defaults, numba's workers busy-wait between
kernels while OpenBLAS's workers (numpy's GEMMs) busy-wait after each call: on a
machine with few cores the two spin against each other, and an MLP epoch took
16 s instead of 0.6 s (docs/performance.md).  The tbb layer does not, and was
the fastest measured: nnumba depends on the tbb wheel (x86-64) and makes its
library findable, since numba only looks for it on the loader's path.

Nothing here changes what another library reads.  Where tbb is missing and numba
falls back to omp, ``OMP_WAIT_POLICY=passive`` (numba's OpenMP workers sleep
instead of spinning) is set only while numba loads its own OpenMP runtime, which
reads it then, and removed again before any other library can see it.  A
user's own settings always win.
"""
from __future__ import annotations

import ctypes
import os
import sys
from contextlib import suppress

_started = False


def preload_tbb():
    """Load the tbb wheel's libtbb.so.12 so that numba's tbb layer finds it; the
    path loaded, or None.  (Only a library more in the process: nothing else uses it.)"""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return None  # the user chose
    for folder in {os.path.join(sys.prefix, "lib"), os.path.join(sys.base_prefix, "lib")}:
        path = os.path.join(folder, "libtbb.so.12")
        if os.path.exists(path):
            with suppress(OSError):
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return path
    return None


def start_numba_threads():
    """Start numba's thread pool now (before nnumba's first parallel kernel), with
    the omp layer's wait policy scoped to numba's own OpenMP runtime."""
    global _started
    if _started:
        return
    _started = True
    from numba.np.ufunc import parallel
    if parallel._is_initialized:
        return  # someone ran a parallel kernel already: their pool, their settings
    ours = "OMP_WAIT_POLICY" not in os.environ
    if ours:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        parallel._launch_threads()
    finally:
        if ours:
            os.environ.pop("OMP_WAIT_POLICY", None)
