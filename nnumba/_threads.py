"""Keep numba's and OpenBLAS's thread pools from spinning against each other.

On a machine with few cores, numba's OpenMP workers and OpenBLAS's workers both
busy-wait after each parallel call; a training step that alternates between
them ran 4-6x slower (../shared/PERFORMANCE.md). Both pools read these settings
when they start, so this module runs before numba or a BLAS-backed numpy start
their threads. A user's own setting always wins.
"""
import os

_DEFAULTS = {
    "OMP_WAIT_POLICY": "passive",      # numba's omp layer: sleep instead of spin
    "OPENBLAS_THREAD_TIMEOUT": "4",    # OpenBLAS: spin 2**4 cycles, not 2**28
}


def apply_defaults():
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Under mpiexec each rank gets its share of the cores before any pool starts.
    from .distributed.threads import apply_thread_env
    apply_thread_env()
