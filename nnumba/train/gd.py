"""Exact gradient descent with the gradient accumulated over mini-batches."""
from __future__ import annotations

import numpy as np

from .base import SETTINGS, Trainer


class GDTrainer(Trainer):
    """One update per epoch, on the gradient of the loss over the whole training set.

    Mini-batches only bound memory (the lecture's "exact gradient descent with
    mini-batches"): each batch's gradient is weighted by its share of the set,
    so the step is the same whatever ``batch_size`` is, up to rounding."""
    __doc__ = (__doc__ or "") + SETTINGS

    kind = "gd"

    def _num_batches(self, n: int) -> int:
        return max(1, super()._num_batches(len(self._local(np.arange(n)))))

    def _epoch(self, n, bar, epoch):
        model, loss = self.model, self.loss
        mine = self._local(np.arange(n))
        model.zero_grad()
        total = 0.0
        for step, start in enumerate(range(0, len(mine), self.batch_size)):
            xb, yb = self._batches.take(mine[start:start + self.batch_size])
            # A mean loss over the set: this batch counts for len(xb)/n of it.
            weight = len(xb) / n if loss.reduction == "mean" else 1.0
            total += self._batch_loss(xb, yb, weight, epoch, step) * weight
            bar.update(step + 1, loss=total)
        total += self._penalty(model.params())
        self._step()
        return self._total(total)
