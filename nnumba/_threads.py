"""numba's threading layer, chosen so that nnumba leaves other libraries alone.

numba runs its parallel kernels on the thread pool of one of three layers: tbb,
omp or workqueue.  With omp's defaults, numba's workers busy-wait between
kernels while OpenBLAS's workers (numpy's GEMMs) busy-wait after each call: on a
machine with few cores the two spin against each other, and an MLP epoch took
16 s instead of 0.6 s (docs/performance.md).  The tbb layer does not, and was
the fastest measured: nnumba depends on the tbb wheel (x86-64) and makes its
library findable, since numba only looks for it on the loader's path.

Nothing here changes what another library reads.  Where tbb is missing and numba
falls back to omp, its workers keep OpenMP's default wait policy: nnumba's GEMMs
run on its own single-threaded OpenBLAS inside numba's pool, so nothing spins
against them, and ``OMP_WAIT_POLICY=passive`` made an MLP epoch 1.5x slower
(docs/performance.md).  It also reached PyTorch, which shares the system's
OpenMP runtime when imported after numba loaded it (trial 42).
"""
from __future__ import annotations

import ctypes
import os
import sys
from contextlib import suppress


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
