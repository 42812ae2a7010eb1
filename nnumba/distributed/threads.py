"""One rank's share of the host's cores, for numba's and OpenBLAS's thread pools.

Two ranks with two threads each on two cores ran 10-20x slower than one thread
per rank (docs/performance.md): the pools busy-wait against each other.
So each rank gets cores ÷ ranks-on-this-host threads, unless the user set
OMP_NUM_THREADS (the usual per-rank knob of MPI + threads jobs).
"""
from __future__ import annotations

import ctypes
import os
import sys

from .launch import local_size_from_env, world_size_from_env

_POOL_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))  # a launcher's binding or a cpuset counts
    return os.cpu_count() or 1


def threads_per_rank(local_ranks: int | None = None) -> int:
    """OMP_NUM_THREADS where the user set it, else cores ÷ ranks on this host (at least 1)."""
    user = os.environ.get("OMP_NUM_THREADS", "").strip()
    if user.isdecimal() and int(user) >= 1:
        return int(user)
    ranks = local_ranks or local_size_from_env() or world_size_from_env()
    return max(1, available_cores() // max(1, ranks))


#: the most threads NUMBA_NUM_THREADS may ask for: 10,000 ran; 100,000 crashed numba's
#: thread pool (a segfault), and larger counts exhausted memory
MAX_THREADS = 4096


def check_thread_env():
    """A clear error for NUMBA_NUM_THREADS < 1 or > MAX_THREADS, before numba's import
    fails on it with a traceback from deep inside numba, or its first parallel kernel
    crashes the process. The ``nnumba`` command says it in one line and exits 2
    (nothing of nnumba is loaded yet to do that later); a library user gets the
    ValueError."""
    text = os.environ.get("NUMBA_NUM_THREADS")
    if text is None or "numba" in sys.modules:  # numba read it already, and took it
        return
    try:
        if 1 <= int(text) <= MAX_THREADS:
            return
    except ValueError:
        return  # numba ignores what is not an integer, with a warning
    message = (f"environment variable NUMBA_NUM_THREADS must be an integer from 1 to "
               f"{MAX_THREADS}, got {text[:40]!r}: unset it (numba then starts one thread "
               f"per core) or set it in that range")
    if _running_the_cli() and "--debug" not in sys.argv:
        sys.stderr.write(f"nnumba: error: {message}\n")
        raise SystemExit(2)
    raise ValueError(message)


def _running_the_cli() -> bool:
    """Whether this process is the ``nnumba`` command (the console script, or
    ``python -m nnumba``), told from the interpreter's own command line."""
    argv = iter(getattr(sys, "orig_argv", [])[1:])  # Python >= 3.10
    for arg in argv:
        if arg in ("-X", "-W"):
            next(argv, None)  # the option's value
        elif arg.startswith(("-m", "-c")):
            return arg == "-mnnumba" or (arg == "-m" and next(argv, None) == "nnumba")
        elif not arg.startswith("-"):  # the script: the console script is named nnumba
            return os.path.basename(arg).split(".")[0] == "nnumba"
    return False


def apply_thread_env():
    """Under mpiexec, default every pool to this rank's share through the environment.

    Only effective before numpy and numba load (the pools read these once);
    :func:`configure_threads` does the same later, at run time. Checks
    NUMBA_NUM_THREADS first (:func:`check_thread_env`)."""
    check_thread_env()
    if world_size_from_env() <= 1:
        return
    share = str(threads_per_rank())
    for name in _POOL_VARS:
        if name == "NUMBA_NUM_THREADS" and "numba" in sys.modules:
            # numba read it at import; changing it now breaks its next compile
            # ("Cannot set NUMBA_NUM_THREADS ... once the threads have been
            # launched"): configure_threads() sets numba's count at run time.
            continue
        os.environ.setdefault(name, share)


def configure_threads(n: int) -> int:
    """Limit numba's and the BLAS's pools of this process to ``n`` threads; returns n."""
    import numba
    n = max(1, int(n))
    for name in _POOL_VARS[:-1]:  # for BLAS/OpenMP libraries loaded later (scipy's OpenBLAS)
        os.environ[name] = str(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    _limit_blas(n)  # for those loaded already (numpy's OpenBLAS)
    from ..kernels.cpu.blas import keep_single_threaded
    keep_single_threaded()  # nnumba's own copy, split over numba's n threads: not n x n
    return n


def _limit_blas(n: int):
    try:
        from threadpoolctl import threadpool_limits  # optional: used where installed
    except ImportError:  # call OpenBLAS's own setter in the loaded libraries (Linux)
        for _, lib in loaded_openblas():
            setter = next((getattr(lib, name) for name in _OPENBLAS_SETTERS
                           if hasattr(lib, name)), None)
            if setter is not None:
                setter(ctypes.c_int(n))
        return
    threadpool_limits(n, user_api="blas")  # stays in force: the object is not a `with` here


# numpy's wheels bundle OpenBLAS under a prefixed name (scipy_openblas64_ ...).
_OPENBLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads")


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

