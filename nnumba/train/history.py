"""What a training records: one row per epoch."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..layers.validation import show


@dataclass
class History:
    """One dict per epoch: epoch, train_loss, seconds, and test_loss, test_accuracy
    where fit had a test set (a data-parallel trainer's rows may hold more).

    test_loss is the mean loss per test sample.  SGDTrainer's train_loss is the
    mean per sample over the epoch's batches (the weights changing between them);
    GDTrainer's is the objective it descends, at the epoch's starting weights: the
    loss over the whole set in the loss's reduction (a sum for reduction="sum"),
    plus the loss's own penalty (Hinge's lam); the optimizer's weight decay, which
    descends (weight_decay / 2) ||w||^2 as well, is left out, as PyTorch leaves it."""
    epochs: list = field(default_factory=list)

    #: what every row may hold: last() of one not recorded (no test set) is None
    KEYS = ("epoch", "train_loss", "test_loss", "test_accuracy", "seconds")

    def last(self, key: str):
        """``key`` of the last epoch; None before any epoch, or where the row does not
        hold it (test_accuracy without a test set: it was a bare KeyError); a KeyError
        for a key neither :attr:`KEYS` nor the last row names (a typo), before any
        epoch too."""
        row = self.epochs[-1] if self.epochs else {}
        if not isinstance(key, str) or (key not in row and key not in self.KEYS):
            raise KeyError(f"History rows hold {', '.join(row or self.KEYS)}; got {show(key)}")
        return row.get(key)
