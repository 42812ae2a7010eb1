"""Exact gradient descent with the gradient accumulated over mini-batches."""
from __future__ import annotations

from .base import Trainer


class GDTrainer(Trainer):
    """One update per epoch, on the gradient of the loss over the whole training set.

    Mini-batches only bound memory (the lecture's "exact gradient descent with
    mini-batches"): each batch's gradient is weighted by its share of the set,
    so the step is the same whatever ``batch_size`` is, up to rounding."""

    def _epoch(self, x, y, bar, epoch):
        model, loss = self.model, self.loss
        n = len(x)
        model.zero_grad()
        total = 0.0
        for step, (xb, yb) in enumerate(self._iterate(x, y)):
            # A mean loss over the set: this batch counts for len(xb)/n of it.
            weight = len(xb) / n if loss.reduction == "mean" else 1.0
            total += self._batch_loss(xb, yb, weight, epoch, step) * weight
            bar.update(step + 1, loss=total)
        params = model.params()
        total += loss.penalty(params)
        loss.penalty_backward(params)
        self._step()
        return total
