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

import json
import warnings
import zlib

import numpy as np

from ..errors import SpecError
from ..layers.streams import rank_stream
from ..layers.validation import integer
from ..train.base import SETTINGS
from ..train.data_checks import check_data
from ..train.gd import GDTrainer
from ..train.sgd import SGDTrainer
from .comm import Communicator, abort_on_error, as_communicator
from .comm import digest as checksum


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
            self._digests = {}
            self._shared = []  # [(layer, its generator, the ranks' shared state)] in fit
            self.progress = self.progress and self.comm.is_root

    def fit(self, x, y, epochs: int = 1, x_test=None, y_test=None):
        """As Trainer.fit, on every rank with the same full (x, y); each rank reads only
        its shares. A rank that fails aborts the job rather than hang the others."""
        with abort_on_error(self.comm):
            check_data(self.model, x, y)  # before len(x): None gave a bare TypeError
            self.comm.check_same("the number of training samples", len(x))
            self._check_agreement(x, y, epochs, x_test, y_test)
            self.comm.bcast(self.model.flat_params)  # start from rank 0's weights
            for state in self._state():  # and its state (a batch norm's running statistics)
                self.comm.bcast(state)
            # Each rank draws from its own stream, made afresh every epoch from one
            # shared generator per layer (the layer's own, as rank 0 holds it): put back
            # after training, it is what a saved training resumes from on every rank, and
            # fit(2) then fit(1) draws as fit(3) does.
            self._shared = [(layer, gen, gen.bit_generator.state)
                            for layer in self.model.layers if self.comm.size > 1 and
                            (gen := layer.random_generator()) is not None]
            try:
                history = super().fit(x, y, epochs, x_test, y_test)
            finally:
                for _, gen, state in self._shared:
                    gen.bit_generator.state = state
            arrays = [self.model.flat_params, *self._state()]
            if not all([self.comm.in_sync(a) for a in arrays]):  # (a list: every rank calls)
                # MPI does not promise bitwise-equal sums on all ranks (never seen with
                # MPICH): say so, and go on with rank 0's weights everywhere
                warnings.warn("the ranks' weights or state differ after training; every "
                              "rank now holds rank 0's", RuntimeWarning, stacklevel=2)
                for a in arrays:
                    self.comm.bcast(a)
        return history

    def _state(self) -> list:
        """The model's parameters that no optimizer updates (``trainable=False``: a batch
        norm's running statistics), which each layer updates from its rank's shares."""
        return [p.value for _, p in self.model.params() if not p.trainable]

    def _epoch(self, n, bar, epoch):
        for i, (layer, gen, state) in enumerate(self._shared):
            gen.bit_generator.state = state  # the shared one, one draw on for the next epoch
            self._shared[i] = (layer, gen, _after_one_draw(gen))
            # this rank's stream (a plugin's layer too; Dropout's for_rank forgets its
            # kept masks as well)
            if hasattr(layer, "for_rank"):
                layer.for_rank(self.comm.rank, self.comm.size)
            else:
                rank_stream(gen, self.comm.rank, self.comm.size)
        value = super()._epoch(n, bar, epoch)
        # Each rank's state saw only its shares: their mean over the ranks, the same on
        # every rank before the epoch's test pass (a running mean of equal shares' means
        # is the global batches', up to rounding; torch's DDP takes rank 0's instead).
        # Summed in float64, and not at all where equal: a constant stays exact.
        for state in self._state():
            if not self.comm.in_sync(state):
                total = self.comm.allreduce_sum(state.astype(np.float64))
                state[...] = total / self.comm.size
        return value

    def _check_agreement(self, x, y, epochs, x_test, y_test):
        """A clear error where the ranks were given other settings, models or data:
        other epochs hung the job in a collective, other learning rates trained on
        silently, another spec or data file of the same sizes too."""
        def digest(*arrays):  # once per set of arrays: fit(epochs=1) in a loop pays it once
            arrays = [np.asarray(a) for a in arrays if a is not None]
            key = tuple((id(a), a.ctypes.data, a.shape, a.dtype.str) for a in arrays)
            if key not in self._digests:
                self._digests[key] = checksum(*arrays)
            return self._digests[key]

        def crc(value):
            return float(zlib.crc32(json.dumps(_comparable(value)).encode()))
        optimizer, loss = self.optimizer, self.loss
        epochs = integer(type(self).__name__, "epochs", epochs, 0, None)
        # The trainer first: another trainer's collectives pair up with these wrongly.
        items = {"the trainer": crc(type(self).__qualname__),
                 "the loss (its type and options)": crc(
                     [type(loss).__module__, type(loss).__qualname__, loss.config()]),
                 "epochs": float(epochs), "batch_size": float(self.batch_size),
                 "lr": getattr(optimizer, "lr", 0.0),
                 "momentum": getattr(optimizer, "momentum", 0.0),
                 "weight_decay": getattr(optimizer, "weight_decay", 0.0),
                 "shuffle": float(getattr(self, "shuffle", False)),
                 "drop_last": float(getattr(self, "drop_last", False)),
                 "the model (its spec)": float(zlib.crc32(
                     json.dumps(self.model.spec(), sort_keys=True).encode())),
                 "the training data": digest(x, y),
                 "the test data": digest(x_test, y_test)}
        low, high = self.comm.min_max(*items.values())
        differ = [name for name, a, b in zip(items, low, high) if a != b]
        if differ:
            raise ValueError(f"{', '.join(differ)} differ between the MPI ranks: every rank "
                             f"must be given the same settings, model and data")

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
    __doc__ = (__doc__ or "") + SETTINGS


class DistributedGDTrainer(_DataParallel, GDTrainer):
    """Exact gradient descent: each rank sums the gradient over its contiguous share
    of the training set, then one Allreduce per epoch."""
    __doc__ = (__doc__ or "") + SETTINGS


TRAINERS = {"sgd": DistributedSGDTrainer, "gd": DistributedGDTrainer}


def _comparable(value):
    """``value`` (a loss's options) as JSON the ranks can compare: numbers as floats
    (1 and 1.0 are one option), arrays as lists, and anything else by its type alone,
    whose repr may hold an address that differs on every rank."""
    if isinstance(value, (bool, np.bool_, str)) or value is None:
        return value if not isinstance(value, np.bool_) else bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return sorted(([str(k), _comparable(v)] for k, v in value.items()),
                      key=lambda kv: kv[0])
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _after_one_draw(gen: np.random.Generator) -> dict:
    """The state ``gen`` would be in after one draw of an int64 (gen left as it is)."""
    twin = np.random.Generator(type(gen.bit_generator)())
    twin.bit_generator.state = gen.bit_generator.state
    twin.integers(2**63)
    return twin.bit_generator.state
