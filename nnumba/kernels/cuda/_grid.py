"""Launches, indexing and scratch shared by the CUDA kernels.

Elementwise and per-output kernels use grid-stride loops, so any size runs with a
bounded grid.  Under the CUDA simulator every simulated thread is a Python
thread: the grid is capped much lower there (the loops stay the same), which
keeps simulator tests fast and exercises the striding.

Every launch goes through :func:`configure`.  In *record* mode
(:func:`recording`) nothing runs: each launch records its kernel and the numba
types of its arguments, and the wrappers take host (numpy) arrays.  That is how
tests/test_cuda_ptx.py learns, from the argument table in
:mod:`nnumba.kernels.cases`, which specialisations to compile for a real GPU.
"""
from __future__ import annotations

import contextlib
import functools
import inspect

import numpy as np
from numba import config, cuda, typeof

THREADS = 256
MAX_BLOCKS = 4 if config.ENABLE_CUDASIM else 65535

_record: list | None = None   # (kernel, argument types) per launch while recording


@contextlib.contextmanager
def recording():
    """Record launches instead of running them; yields the list of (kernel, types)."""
    global _record
    outer, _record = _record, []
    try:
        yield _record
    finally:
        _record = outer


def configure(kernel, grid, block):
    """kernel[grid, block], or a recorder of its argument types while recording."""
    if _record is not None:
        return lambda *args: _record.append((kernel, tuple(typeof(a) for a in args)))
    return kernel[grid, block]


def launch_1d(kernel, n: int, per_block=False):
    """kernel configured for n work items: THREADS per block (32 in the simulator),
    blocks for one item per thread (per_block: one item per block), capped
    (grid-stride loops); a launch of nothing when there are none."""
    if not n:
        return lambda *args: None
    threads = 32 if config.ENABLE_CUDASIM else THREADS
    blocks = int(n) if per_block else (int(n) + threads - 1) // threads
    return configure(kernel, max(1, min(blocks, MAX_BLOCKS)), threads)


def over(kernel, items=lambda first, *rest: first.size, lead=(), name=None):
    """The kernel set's function for ``kernel``: the kernel's arguments (and signature)
    after the ``lead`` ones, which it passes first, launched over ``items(*arguments)``
    work items (the first argument's size by default), nothing when there are none;
    named ``name`` (by default the kernel's, without its leading underscore)."""
    @functools.wraps(kernel.py_func)
    def run(*args):
        launch_1d(kernel, items(*args))(*lead, *args)
    run.__name__ = run.__qualname__ = name or kernel.py_func.__name__.lstrip("_")
    parameters = list(inspect.signature(kernel.py_func).parameters.values())
    run.__signature__ = inspect.Signature(parameters[len(lead):])
    return run


def rows(first, *rest) -> int:
    """One work item per row of the first argument."""
    return first.shape[0]


@cuda.jit(device=True, inline=True)
def unravel(t, d1, d2, d3):
    """(a, b, c, d) of flat index t into an array of shape (*, d1, d2, d3), d fastest:
    consecutive threads take consecutive elements of the last axis."""
    d = t % d3
    c = (t // d3) % d2
    b = (t // (d3 * d2)) % d1
    a = t // (d3 * d2 * d1)
    return a, b, c, d


def device_empty(shape, dtype, keep: dict):
    """A device array (a numpy array while recording): the one kept in ``keep`` under
    (shape, dtype), allocated there on first use."""
    if _record is not None:
        return np.empty(shape, dtype)
    key = (tuple(np.atleast_1d(shape)), np.dtype(dtype).str)
    if key not in keep:
        keep[key] = cuda.device_array(shape, dtype)
    return keep[key]


def to_host(a) -> np.ndarray:
    """A device array's contents on the host (a numpy array passes through)."""
    return a if isinstance(a, np.ndarray) else a.copy_to_host()
