"""Launch geometry shared by the CUDA kernels, and the argument types used to
compile each kernel ahead for a real GPU (tests/test_cuda_ptx.py).

Elementwise and per-output kernels use grid-stride loops, so any size runs with
a bounded grid. Under the CUDA simulator every simulated thread is a Python
thread: the grid is capped much lower there (the loops stay the same), which
keeps simulator tests fast and exercises the striding.
"""
from numba import config, types

THREADS = 256
MAX_BLOCKS = 4 if config.ENABLE_CUDASIM else 65535


def blocks(n: int, threads: int = THREADS) -> int:
    """Blocks for n work items at one item per thread, capped (grid-stride loops)."""
    return max(1, min((int(n) + threads - 1) // threads, MAX_BLOCKS))


def launch_1d(kernel, n: int, threads: int = THREADS):
    """kernel configured for n items, THREADS per block."""
    if config.ENABLE_CUDASIM:
        threads = min(threads, 32)
    return kernel[blocks(n, threads), threads]


def pair(v):
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


# ---- argument types for ahead-of-time (PTX) compilation -------------------
FLOATS = (types.float32, types.float64)
i64 = types.int64
i32 = types.int32
b1 = types.boolean


def arr(dtype, ndim):
    """A C-contiguous array type, as numba types a device array the layers pass."""
    return types.Array(dtype, ndim, "C")
