"""SGD and GD trainers that split every global mini-batch across MPI ranks.

The loss of a global batch B is a mean (or a sum) over its samples. Each rank
takes a disjoint, contiguous share S_r of B and accumulates the gradient of its
share's mean loss scaled by |S_r| / |B|; summing those over ranks gives the
gradient of the mean over B, which one Allreduce of the flat gradient buffer
does. Every rank then applies the same update, so the weights stay identical,
and equal a single process's over the same global batches up to the order of
floating-point sums, whatever the number of ranks.
"""
from __future__ import annotations

import math

from ..data.batching import batches, iterate
from ..train.gd import GDTrainer
from ..train.sgd import SGDTrainer
from .comm import Communicator, abort_on_error


class _DataParallel:
    """Mixin over a Trainer: same seed and start weights everywhere, progress on
    rank 0 only, and the gradient summed over ranks before every update."""

    def __init__(self, model, loss, *, comm: Communicator | None = None, **kwargs):
        self.comm = comm if comm is not None else Communicator()
        with abort_on_error(self.comm):
            # Every rank must draw the same shuffles, or the global batches disagree.
            kwargs["seed"] = self.comm.bcast_int(int(kwargs.get("seed", 0)))
            # The ranks already are one process per core: no precompile workers.
            kwargs["precompile"] = False
            super().__init__(model, loss, **kwargs)
            self.progress = self.progress and self.comm.is_root

    def fit(self, x, y, epochs: int = 1, x_test=None, y_test=None):
        """As Trainer.fit, on every rank with the same full (x, y); each rank reads only
        its shares. A rank that fails aborts the job rather than hang the others."""
        with abort_on_error(self.comm):
            self.comm.check_same("the number of training samples", len(x))
            self.comm.bcast(self.model.flat_params)  # start from rank 0's weights
            history = super().fit(x, y, epochs, x_test, y_test)
            if not self.comm.in_sync(self.model.flat_params):
                # Never seen with MPICH; MPI does not promise bitwise-equal sums on all ranks.
                self.comm.bcast(self.model.flat_params)
        return history

    def _step(self):
        self.comm.allreduce_sum(self.model.flat_grads)  # one call on the flat buffer
        super()._step()

    def _penalty(self, params) -> float:
        """The loss's parameter penalty, counted on rank 0 only (the Allreduce sums)."""
        if not self.comm.is_root:
            return 0.0
        value = self.loss.penalty(params)
        self.loss.penalty_backward(params)
        return value


class DistributedSGDTrainer(_DataParallel, SGDTrainer):
    """Mini-batch SGD; each global batch of ``batch_size`` is split across the ranks."""

    def _epoch(self, x, y, bar, epoch):
        model, loss, comm = self.model, self.loss, self.comm
        params = model.params()
        mean = loss.reduction == "mean"
        total = 0.0  # this rank's part of the summed per-sample loss
        # Same rng, same permutation on every rank: the single process's batches.
        for step, batch in enumerate(batches(len(x), self.batch_size,
                                             shuffle=self.shuffle, rng=self.rng)):
            part = batch[comm.shard(len(batch))]
            model.zero_grad()
            value = 0.0
            if len(part):  # a short last batch can leave a rank without samples
                if self.shuffle:
                    xb, yb = x[part], y[part]
                else:  # consecutive indices: views, no copy
                    xb, yb = x[part[0]:part[-1] + 1], y[part[0]:part[-1] + 1]
                weight = len(part) / len(batch) if mean else 1.0
                value = self._batch_loss(xb, yb, weight, epoch, step)
                total += value * len(part) if mean else value
            penalty = self._penalty(params)
            total += penalty * len(batch) if mean else penalty
            self._step()
            bar.update(step + 1, loss=value)  # rank 0's share of the batch
        return float(comm.sum(total)[0]) / len(x)


class DistributedGDTrainer(_DataParallel, GDTrainer):
    """Exact gradient descent: each rank sums the gradient over its contiguous share
    of the training set, then one Allreduce per epoch."""

    def _num_batches(self, n: int) -> int:
        part = self.comm.shard(n)
        return max(1, math.ceil((part.stop - part.start) / self.batch_size))

    def _epoch(self, x, y, bar, epoch):
        model, loss, comm = self.model, self.loss, self.comm
        n = len(x)
        mine = comm.shard(n)
        model.zero_grad()
        total = 0.0
        if mine.stop > mine.start:
            for step, (xb, yb) in enumerate(iterate(x[mine], y[mine], self.batch_size)):
                weight = len(xb) / n if loss.reduction == "mean" else 1.0
                total += self._batch_loss(xb, yb, weight, epoch, step) * weight
                bar.update(step + 1, loss=total)
        total += self._penalty(model.params())
        self._step()
        return float(comm.sum(total)[0])


TRAINERS = {"sgd": DistributedSGDTrainer, "gd": DistributedGDTrainer}
