"""Start this process's part of an MPI job."""
from __future__ import annotations

from ..layers.validation import integer
from .comm import Communicator, as_communicator
from .threads import configure_threads, threads_per_rank


def setup(comm=None, threads: int | None = None) -> Communicator:
    """A Communicator (COMM_WORLD by default), with this rank's numba and BLAS
    threads set to ``threads`` or cores ÷ ranks on this host."""
    comm = Communicator(as_communicator(comm).comm)  # a fresh wrapper, its own timers
    if threads is not None:  # "a" gave int()'s bare ValueError, 0 and -1 one thread
        threads = integer("setup", "threads", threads, 1)
    comm.threads = configure_threads(threads or threads_per_rank(comm.local_size()))
    return comm
