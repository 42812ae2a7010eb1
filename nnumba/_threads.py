"""Keep numba's and OpenBLAS's thread pools from spinning against each other.

On a machine with few cores, numba's OpenMP workers and OpenBLAS's workers both
busy-wait after each parallel call; a training step that alternates between
them ran 4-6x slower (../shared/PERFORMANCE.md). Both pools read these settings
when they start, so this module runs before numba starts its threads. A user's
own setting always wins.
"""
import ctypes
import os
import sys

_DEFAULTS = {
    "OMP_WAIT_POLICY": "passive",      # numba's omp layer: sleep instead of spin
    "OPENBLAS_THREAD_TIMEOUT": "4",    # OpenBLAS: spin 2**4 cycles, not 2**28
}


RESTARTED = []  # the OpenBLAS libraries made to re-read the environment


def apply_defaults():
    numpy_was_loaded = "numpy" in sys.modules
    ours = [key for key in _DEFAULTS if key not in os.environ]
    for key in ours:
        os.environ[key] = _DEFAULTS[key]
    if numpy_was_loaded and "OPENBLAS_THREAD_TIMEOUT" in ours:
        RESTARTED[:] = restart_loaded_openblas()
    if "NUMBA_THREADING_LAYER" not in os.environ:
        preload_tbb()
    # Under mpiexec each rank gets its share of the cores before any pool starts.
    from .distributed.threads import apply_thread_env
    apply_thread_env()


def restart_loaded_openblas() -> list:
    """numpy was imported before nnumba, so its OpenBLAS read the environment
    already: make it read it again and restart its threads with our timeout
    (measured: 10.2 -> 7.2 ms per CNN step). Linux only; harmless elsewhere."""
    done = []
    for path, lib in loaded_openblas():
        try:
            read_env, shutdown = lib.openblas_read_env, lib.blas_thread_shutdown_
        except AttributeError:
            continue
        read_env()
        shutdown()  # the next BLAS call restarts the workers with the new timeout
        done.append(path)
    return done


def loaded_openblas() -> list:
    """[(path, ctypes handle)] of the OpenBLAS libraries this process has loaded
    (numpy's and scipy's wheels each bundle one). Linux only: [] elsewhere."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps
                     if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return []
    found = []
    for path in sorted(paths):
        try:
            found.append((path, ctypes.CDLL(path)))  # already loaded: only a handle
        except OSError:
            continue
    return found


def preload_tbb():
    """Let numba find the tbb wheel's libtbb.so.12 (pip install "nnumba[tbb]"): its
    tbb threading layer was the fastest here (7.1 against 8.4 ms per CNN step
    with omp), but numba only looks for the library on the loader's path."""
    for folder in {os.path.join(sys.prefix, "lib"), os.path.join(sys.base_prefix, "lib")}:
        path = os.path.join(folder, "libtbb.so.12")
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return path
            except OSError:
                continue
    return None
