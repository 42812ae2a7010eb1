"""Start this process's part of an MPI job."""
from __future__ import annotations

from .comm import Communicator
from .threads import configure_threads, threads_per_rank


def setup(comm=None, threads: int | None = None) -> Communicator:
    """A Communicator (COMM_WORLD by default), with this rank's numba and BLAS
    threads set to ``threads`` or cores ÷ ranks on this host."""
    comm = Communicator(comm)
    comm.threads = configure_threads(threads or threads_per_rank(comm.local_size()))
    return comm
