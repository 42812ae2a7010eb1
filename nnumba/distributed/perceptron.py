"""The lecture's perceptron across MPI ranks, by iterative parameter mixing
(McDonald, Hall and Mann, 2010): each epoch, every rank runs the lecture's
perceptron epoch on its own shard starting from the shared weights, then the
ranks' weights are averaged. It stops after an epoch in which no rank made a
change; on linearly separable data it converges, as the serial perceptron does.
With one rank it is the lecture's perceptron exactly.  The loop is
:func:`nnumba.train.train_perceptron`'s; this module supplies its three steps.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..kernels.cpu.perceptron import perceptron_epoch
from ..train.perceptron import PerceptronResult, _Alone, train_perceptron
from .comm import Communicator, abort_on_error, as_communicator, digest


class _Ranks(_Alone):
    def __init__(self, comm: Communicator):
        self.comm = comm

    def prepare(self, x, y, what):
        """This rank's rows only: the full set is never copied."""
        self.comm.check_same(f"the number of {what} samples", len(x))
        if len(x) < self.comm.size:
            raise ShapeError(f"perceptron: {len(x)} {what} samples cannot be shared by "
                             f"{self.comm.size} ranks")
        mine = self.comm.shard(len(x))
        return super().prepare(x[mine], np.asarray(y)[mine], what)

    def epoch(self, xs, ys, w, b):
        mixed = np.empty(w.size + 1)  # this rank's weights, then its number of changes
        mixed[:-1] = w
        mixed[-1] = perceptron_epoch(xs, ys, mixed[:-1], b)
        self.comm.allreduce_sum(mixed)  # one call: weights and changes together
        changes = int(mixed[-1])
        # With no change anywhere every rank still holds w: keep it exactly.
        return changes, (mixed[:-1] / self.comm.size if changes else w)

    def total(self, *counts):
        return self.comm.sum(*counts)


def train_perceptron_distributed(x, y, max_epochs: int = 100, *, x_test=None, y_test=None,
                                 callback=None, bias: bool = True,
                                 comm: Communicator | None = None) -> PerceptronResult:
    """As :func:`nnumba.train_perceptron`, on every rank with the same full (x, y).

    The table's nb_changes and errors are totals over all ranks; ``callback(row)``
    runs on every rank (guard it with ``comm.is_root`` to print once)."""
    comm = as_communicator(comm)
    with abort_on_error(comm):
        # else train_perceptron says what is wrong; another count, or the bias feature on
        # some ranks only, hung or crashed the job
        if isinstance(max_epochs, (int, np.integer)) and not isinstance(max_epochs, bool):
            comm.check_same("max_epochs", int(max_epochs))
        if isinstance(bias, (bool, np.bool_)):
            comm.check_same("bias", int(bias))
        # as the SGD and GD trainers do: another file or a stale copy on one host trained
        # silently on a mix of both, and a test set on one rank only crashed in MPI
        low, high = comm.min_max(digest(x, y), digest(x_test, y_test))
        differ = [what for what, a, b in zip(("the training data", "the test data"), low, high)
                  if a != b]
        if differ:
            raise ValueError(f"{' and '.join(differ)} differ between the MPI ranks: every "
                             f"rank must be given the same data")
        return train_perceptron(x, y, max_epochs=max_epochs, x_test=x_test, y_test=y_test,
                                callback=callback, bias=bias, group=_Ranks(comm))
