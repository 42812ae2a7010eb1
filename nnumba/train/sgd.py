"""Mini-batch stochastic gradient descent (batch_size=1 is per-sample SGD)."""
from __future__ import annotations

from ..errors import SpecError
from ..layers.validation import flag
from .base import SETTINGS, Trainer


class SGDTrainer(Trainer):
    """One update per mini-batch: w <- w - eta * grad of the batch loss.

    ``shuffle=True`` visits the samples in a new random order every epoch,
    without replacement; ``False`` visits them in order.  ``drop_last=True`` leaves
    out the last batch where it is short (as PyTorch's DataLoader): for a layer
    whose training forward needs several samples (a batch norm refuses one).

    (The lecture's listing of this loop puts the step after the inner loop and
    takes ``dloss(y, ...)`` on the whole ``y``; this is the algorithm it means.)"""
    __doc__ = (__doc__ or "") + SETTINGS

    def __init__(self, model, loss, *, shuffle: bool = True, drop_last: bool = False,
                 **kwargs):
        super().__init__(model, loss, **kwargs)
        self.shuffle = flag(type(self).__name__, "shuffle", shuffle)  # "no" would shuffle
        self.drop_last = flag(type(self).__name__, "drop_last", drop_last)

    def _num_batches(self, n: int) -> int:
        return n // self.batch_size if self.drop_last else super()._num_batches(n)

    def _epoch(self, n, bar, epoch):
        model, mean = self.model, self.loss.reduction == "mean"
        params = model.params()
        total = 0.0  # summed per-sample loss, for the epoch's mean
        if self.drop_last:
            if n < self.batch_size:  # (before any update: nothing trained, nothing lost)
                raise SpecError(f"{type(self).__name__}: drop_last leaves out every batch of "
                                f"{n} samples at batch_size {self.batch_size}; lower "
                                f"batch_size or train without drop_last")
            n -= n % self.batch_size  # the samples visited
        for step, batch in enumerate(self._batches.order(self.shuffle, self.rng,
                                                         self.drop_last)):
            part = self._local(batch)
            model.zero_grad()
            value = 0.0
            if len(part):  # a rank's share of a short last batch may be empty
                xb, yb = self._batches.take(part)
                weight = len(part) / len(batch) if mean else 1.0
                value = self._batch_loss(xb, yb, weight, epoch, step)
                total += value * len(part) if mean else value
            penalty = self._penalty(params)
            total += penalty * len(batch) if mean else penalty
            self._step()
            bar.update(step + 1, loss=value + penalty)
        return self._total(total) / n
