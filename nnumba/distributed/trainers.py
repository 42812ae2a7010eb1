"""SGD and GD trainers that split every global mini-batch across MPI ranks: the
single-process loops of :mod:`nnumba.train`, with these hooks.

The loss of a global batch B is a mean (or a sum) over its samples. Each rank
takes a disjoint, contiguous share S_r of B and accumulates the gradient of its
share's mean loss scaled by |S_r| / |B|; summing those over ranks gives the
gradient of the mean over B, which one Allreduce of the flat gradient buffer
does. Every rank then applies the same update, so the weights stay identical,
and equal a single process's over the same global batches up to the order of
floating-point sums, whatever the number of ranks.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpecError
from ..layers.validation import integer
from ..train.base import check_data
from ..train.gd import GDTrainer
from ..train.sgd import SGDTrainer
from .comm import Communicator, abort_on_error, as_communicator


class _DataParallel:
    """Mixin over a Trainer: same seed and start weights everywhere, progress on
    rank 0 only, each rank's share of every batch, and the gradient summed over
    ranks before every update."""

    def __init__(self, model, loss, *, comm: Communicator | None = None, **kwargs):
        self.comm = as_communicator(comm)
        with abort_on_error(self.comm):
            # Every rank must draw the same shuffles, or the global batches disagree.
            seed = kwargs.get("seed", 0)
            if seed is None:  # fresh entropy: rank 0's, shared
                seed = int(np.random.SeedSequence().generate_state(1)[0])
            seed = integer(type(self).__name__, "seed", seed, 0, None)
            if seed >= 2**63:  # broadcast as an int64: OverflowError
                raise SpecError(f"{type(self).__name__}: seed must be below 2**63 to be "
                                f"shared by the MPI ranks, got {seed}")
            kwargs["seed"] = self.comm.bcast_int(seed)
            # The ranks already are one process per core: no precompile workers.
            kwargs["precompile"] = False
            super().__init__(model, loss, **kwargs)
            self.progress = self.progress and self.comm.is_root

    def fit(self, x, y, epochs: int = 1, x_test=None, y_test=None):
        """As Trainer.fit, on every rank with the same full (x, y); each rank reads only
        its shares. A rank that fails aborts the job rather than hang the others."""
        with abort_on_error(self.comm):
            check_data(self.model, x, y)  # before len(x): None gave a bare TypeError
            self.comm.check_same("the number of training samples", len(x))
            self.comm.bcast(self.model.flat_params)  # start from rank 0's weights
            history = super().fit(x, y, epochs, x_test, y_test)
            if not self.comm.in_sync(self.model.flat_params):
                # Never seen with MPICH; MPI does not promise bitwise-equal sums on all ranks.
                self.comm.bcast(self.model.flat_params)
        return history

    def _local(self, idx):
        return idx[self.comm.shard(len(idx))]

    def _penalty(self, params) -> float:
        """Counted on rank 0 only: the Allreduce sums the gradients."""
        return super()._penalty(params) if self.comm.is_root else 0.0

    def _step(self):
        self.comm.allreduce_sum(self.model.flat_grads)  # one call on the flat buffer
        super()._step()

    def _total(self, value: float) -> float:
        return float(self.comm.sum(value)[0])


class DistributedSGDTrainer(_DataParallel, SGDTrainer):
    """Mini-batch SGD; each global batch of ``batch_size`` is split across the ranks."""


class DistributedGDTrainer(_DataParallel, GDTrainer):
    """Exact gradient descent: each rank sums the gradient over its contiguous share
    of the training set, then one Allreduce per epoch."""


TRAINERS = {"sgd": DistributedSGDTrainer, "gd": DistributedGDTrainer}
