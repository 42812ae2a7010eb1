"""The few collectives data-parallel training needs, on numpy buffers only.

Buffers travel with the uppercase mpi4py methods (Allreduce, Bcast): no pickle.
"""
from __future__ import annotations

import functools
import os
import sys
import time
import traceback
import zlib
from contextlib import contextmanager, suppress
from typing import NoReturn

import numpy as np

from ..errors import DTypeError, NnumbaError
from .launch import import_mpi


def digest(*arrays) -> float:
    """A checksum of the arrays' bytes (None left out), for the ranks to compare
    their data; -1 for what no checksum takes (object arrays: the data checks say why)."""
    try:
        return float(functools.reduce(
            lambda h, a: zlib.crc32(np.ascontiguousarray(a).view(np.uint8), h),
            [np.asarray(a) for a in arrays if a is not None], 0))
    except (TypeError, ValueError):
        return -1.0


def shard_bounds(n: int, size: int, rank: int) -> tuple[int, int]:
    """[lo, hi) of rank's contiguous share of n items; shares differ by at most one."""
    return n * rank // size, n * (rank + 1) // size


class Communicator:
    """A wrapper of an mpi4py communicator (COMM_WORLD by default) that also times
    the Allreduce calls, for the benchmark's "time spent in Allreduce"."""

    def __init__(self, comm=None):
        self.MPI = import_mpi()
        if comm is not None and not isinstance(comm, self.MPI.Comm):  # else AttributeError
            raise DTypeError(f"Communicator: comm must be an mpi4py communicator such as "
                             f"MPI.COMM_WORLD, got {type(comm).__name__}")
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.threads = None  # set by nnumba.distributed.setup()
        self.reset_timers()

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def reset_timers(self):
        self.allreduce_seconds, self.allreduce_calls = 0.0, 0

    # ---- collectives on numpy buffers ------------------------------------------------
    def allreduce_sum(self, buf: np.ndarray) -> np.ndarray:
        """Sum ``buf`` over all ranks, in place (one call, whatever its size)."""
        start = time.perf_counter()
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
        self.allreduce_seconds += time.perf_counter() - start
        self.allreduce_calls += 1
        return buf

    def sum(self, *values: float) -> np.ndarray:
        """Scalars summed over all ranks, as float64 (exact for counts below 2**53)."""
        return self.allreduce_sum(np.array(values, dtype=np.float64))

    def min_max(self, *values: float) -> tuple[np.ndarray, np.ndarray]:
        low, high = np.array(values, np.float64), np.array(values, np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, low, op=self.MPI.MIN)
        self.comm.Allreduce(self.MPI.IN_PLACE, high, op=self.MPI.MAX)
        return low, high

    def bcast(self, buf: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite ``buf`` on every rank with root's, in place."""
        self.comm.Bcast(buf, root=root)
        return buf

    def bcast_int(self, value: int, root: int = 0) -> int:
        return int(self.bcast(np.array([value], np.int64), root)[0])

    def barrier(self):
        self.comm.Barrier()

    # ---- helpers -------------------------------------------------------------------------
    def shard(self, n: int) -> slice:
        """This rank's contiguous share of range(n)."""
        return slice(*shard_bounds(n, self.size, self.rank))

    def local_size(self) -> int:
        """Ranks on this host (they share its cores)."""
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            return node.Get_size()
        finally:
            node.Free()

    def in_sync(self, buf: np.ndarray) -> bool:
        """True when ``buf`` is bit for bit the same on every rank."""
        low, high = buf.copy(), buf.copy()
        self.comm.Allreduce(self.MPI.IN_PLACE, low, op=self.MPI.MIN)
        self.comm.Allreduce(self.MPI.IN_PLACE, high, op=self.MPI.MAX)
        return bool(np.array_equal(low, high, equal_nan=True))

    def check_same(self, what: str, value: int):
        """A clear error on every rank where ``value`` differs between ranks."""
        low, high = self.min_max(value)
        if low[0] != high[0]:
            raise ValueError(f"{what} differs between MPI ranks ({int(low[0])} to "
                             f"{int(high[0])}): every rank must be given the same settings "
                             f"and data")

    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Print ``message`` and end every rank of the job (never returns)."""
        # A closed pipe (or stdout None) must not stop the abort, hence suppress.
        with suppress(Exception):  # MPI_Abort kills us before Python flushes stdout
            sys.stdout.flush()
        with suppress(Exception):
            sys.stderr.write(message.rstrip("\n") + "\n")
            sys.stderr.flush()
        # The launcher forwards a rank's output through a pipe; MPI_Abort right after
        # the write lost it now and then on a busy machine (the job ended with no word).
        time.sleep(0.2)
        try:
            self.comm.Abort(code)
        finally:
            # MPICH's MPI_Abort can return (once in 13 runs when two ranks abort together):
            # the caller would then go on as if nothing failed. End this rank regardless.
            os._exit(code)

    def __repr__(self):
        return f"Communicator(rank={self.rank}, size={self.size}, threads={self.threads})"


def as_communicator(comm) -> Communicator:
    """``comm`` as a Communicator: None is COMM_WORLD's, an mpi4py communicator is
    wrapped, and anything else is a DTypeError (an AttributeError at its first use)."""
    return comm if isinstance(comm, Communicator) else Communicator(comm)


# What a user can fix: the message alone says enough; anything else gets its traceback.
_USER_ERRORS = (NnumbaError, ValueError, FileNotFoundError, KeyboardInterrupt)


@contextmanager
def abort_on_error(comm: Communicator | None):
    """Turn an exception on one rank into MPI_Abort of the whole job.

    Otherwise the other ranks would wait forever in their next collective.
    With one rank (or none) the exception propagates as usual. Nesting is safe
    (the library's trainers and the CLI both use it): the innermost aborts, and
    abort never returns."""
    try:
        yield
    except BaseException as exc:
        if comm is None or comm.size == 1 or (isinstance(exc, SystemExit) and not exc.code):
            raise
        details = "" if isinstance(exc, _USER_ERRORS) else traceback.format_exc()
        comm.abort(f"{details}nnumba: rank {comm.rank} of {comm.size} failed: "
                   f"{type(exc).__name__}: {exc}\n"
                   f"nnumba: aborting all {comm.size} ranks so that none waits for it")
        raise  # only reached where abort is a stand-in that returns: never swallow the error
