"""Mini-batch stochastic gradient descent (batch_size=1 is per-sample SGD)."""
from __future__ import annotations

from .base import Trainer


class SGDTrainer(Trainer):
    """One update per mini-batch: w <- w - eta * grad of the batch loss.

    ``shuffle=True`` visits the samples in a new random order every epoch,
    without replacement; ``False`` visits them in order."""

    def __init__(self, model, loss, *, shuffle: bool = True, **kwargs):
        super().__init__(model, loss, **kwargs)
        self.shuffle = shuffle

    def _epoch(self, x, y, bar, epoch):
        model, loss = self.model, self.loss
        params = model.params()
        total = 0.0  # summed per-sample loss, for the epoch's mean
        for step, (xb, yb) in enumerate(self._iterate(x, y, self.shuffle)):
            model.zero_grad()
            value = self._batch_loss(xb, yb, 1.0, epoch, step) + loss.penalty(params)
            loss.penalty_backward(params)
            self._step()
            total += value * len(xb) if loss.reduction == "mean" else value
            bar.update(step + 1, loss=value)
        return total / len(x)
