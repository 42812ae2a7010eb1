"""Start this process's part of an MPI job."""
from __future__ import annotations

import sys

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
    if comm.size > 1 and not getattr(sys.excepthook, "aborts_mpi_job", False):
        _abort_on_uncaught(comm)
    return comm


def _abort_on_uncaught(comm: Communicator):
    """An exception no one catches on one rank (its data file missing) aborts the
    job after its traceback, as ``python -m mpi4py`` does: else the other ranks wait
    for that rank in their next collective for ever."""
    shown = sys.excepthook

    def abort_job(kind, value, tb):
        shown(kind, value, tb)
        comm.abort(f"nnumba: rank {comm.rank} of {comm.size} failed ({kind.__name__}): "
                   f"aborting all {comm.size} ranks so that none waits for it")
    abort_job.aborts_mpi_job = True
    sys.excepthook = abort_job
