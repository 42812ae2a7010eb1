"""Is this process one rank of an MPI job? Read from the launcher's environment,
so that the answer needs neither mpi4py nor an MPI_Init."""
from __future__ import annotations

import os

from ..errors import MPIUnavailableError

INSTALL_HINT = 'pip install "nnumba[mpi]" (mpi4py and the mpich wheel, which brings mpiexec)'

# MPICH/Hydra, Intel MPI and Slurm's PMI set PMI_*; Open MPI sets OMPI_*; MVAPICH MV2_*.
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
_LOCAL_SIZE_VARS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")


def _first_int(names) -> int | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value.isdecimal():
            return int(value)
    return None


def world_size_from_env() -> int:
    """Number of ranks the launcher started (1 when not launched by mpiexec)."""
    return _first_int(_SIZE_VARS) or 1


def rank_from_env() -> int:
    return _first_int(_RANK_VARS) or 0


def local_size_from_env() -> int | None:
    """Ranks on this host, where the launcher says (None where it does not)."""
    return _first_int(_LOCAL_SIZE_VARS)


def launched_under_mpi() -> bool:
    """True when mpiexec started this process as one of several ranks."""
    return world_size_from_env() > 1


def import_mpi():
    """``mpi4py.MPI``, or an error that says how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise MPIUnavailableError(f"training over MPI needs mpi4py, which cannot be imported "
                                  f"({exc}); install it with: {INSTALL_HINT}") from None
    return MPI
