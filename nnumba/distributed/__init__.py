"""Data-parallel training over MPI (mpi4py): each rank trains on its shard of every
global mini-batch and the flat gradient is summed with one Allreduce per update.

    mpiexec -n 2 nnumba train ...            # the command line
    mpiexec -n 2 python my_script.py         # the library: DistributedSGDTrainer(model, loss)

Importing this package does not import mpi4py (nor numpy): the names below load
on first use, so that launch detection stays cheap and the single-process path
never needs MPI.
"""
from .launch import (INSTALL_HINT, MPIUnavailableError, import_mpi, launched_under_mpi,
                     local_size_from_env, rank_from_env, world_size_from_env)

_LAZY = {
    "Communicator": "comm", "abort_on_error": "comm", "shard_bounds": "comm",
    "configure_threads": "threads", "threads_per_rank": "threads",
    "DistributedSGDTrainer": "trainers", "DistributedGDTrainer": "trainers",
    "TRAINERS": "trainers", "train_perceptron_distributed": "perceptron", "setup": "session",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nnumba.distributed' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = ["INSTALL_HINT", "MPIUnavailableError", "import_mpi", "launched_under_mpi",
           "local_size_from_env", "rank_from_env", "world_size_from_env", *_LAZY]
