"""The lecture's perceptron across MPI ranks, by iterative parameter mixing
(McDonald, Hall and Mann, 2010): each epoch, every rank runs the lecture's
perceptron epoch on its own shard starting from the shared weights, then the
ranks' weights are averaged. It stops after an epoch in which no rank made a
change; on linearly separable data it converges, as the serial perceptron does.
With one rank it is the lecture's perceptron exactly.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..kernels.cpu.perceptron import perceptron_epoch, sign_errors
from ..train.perceptron import PerceptronResult, _prepare
from .comm import Communicator, abort_on_error


def _shard(comm, x, y, what):
    """This rank's rows only, with the bias feature: the full set is never copied."""
    comm.check_same(f"the number of {what} samples", len(x))
    if len(x) < comm.size:
        raise ShapeError(f"perceptron: {len(x)} {what} samples cannot be shared by "
                         f"{comm.size} ranks")
    mine = comm.shard(len(x))
    return _prepare(x[mine], np.asarray(y)[mine], what)


def train_perceptron_distributed(x, y, *, max_epochs: int = 100, x_test=None, y_test=None,
                                 callback=None, comm: Communicator | None = None
                                 ) -> PerceptronResult:
    """As :func:`nnumba.train_perceptron`, on every rank with the same full (x, y).

    The table's nb_changes and errors are totals over all ranks; ``callback(row)``
    runs on every rank (guard it with ``comm.is_root`` to print once)."""
    comm = comm if comm is not None else Communicator()
    with abort_on_error(comm):
        if int(max_epochs) < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
        xs, ys = _shard(comm, x, y, "training")
        test = _shard(comm, x_test, y_test, "test") if x_test is not None else None
        if test is not None and test[0].shape[1] != xs.shape[1]:
            raise ShapeError(f"perceptron: test inputs have {test[0].shape[1] - 1} features, "
                             f"training inputs {xs.shape[1] - 1}")
        n_train, n_test = len(x), (len(x_test) if test is not None else 0)
        w = np.zeros(xs.shape[1])
        mixed = np.empty(w.size + 1)  # this rank's weights, then its number of changes
        history, updates, converged = [], 0, False
        for epoch in range(int(max_epochs)):
            mixed[:-1] = w
            mixed[-1] = perceptron_epoch(xs, ys, mixed[:-1])
            comm.allreduce_sum(mixed)  # one call: weights and changes together
            changes = int(mixed[-1])
            updates += changes
            if changes:  # with no change anywhere every rank still holds w: keep it exactly
                w = mixed[:-1] / comm.size
            errors = comm.sum(sign_errors(xs, ys, w),
                              sign_errors(*test, w) if test is not None else 0)
            row = {"epoch": epoch, "nb_changes": changes,
                   "train_error": errors[0] / n_train,
                   "test_error": errors[1] / n_test if test is not None else None}
            history.append(row)
            if callback is not None:
                callback(row)
            if changes == 0:
                converged = True
                break
    return PerceptronResult(w[:-1].copy(), float(w[-1]), converged, updates, history)
