"""What a diverged training says to do: lower the learning rate, and where the data
explain it, scale the inputs or the targets, or lower the weight decay."""
from __future__ import annotations

from ..errors import TrainingDiverged

#: data larger than this in magnitude get "scale the inputs" in the advice: standardised
#: data and the usual initialisations are about 1 (a rare value about 10), where a column
#: of standard deviation 100 diverged at the classifier's default step (trial 50)
LARGE_INPUT = 100.0
#: float targets larger than this get "scale the targets": a squared error's gradient
#: grows with them (scikit-learn's diabetes targets, up to 346, diverged at the
#: regressor's default step, which trains targets of standard deviation ~100)
LARGE_TARGET = 100.0


def _largest(a) -> float:
    """The largest magnitude in ``a``, without a copy of it (the whole training set)."""
    return 0.0 if a is None or not a.size else float(max(a.max(), -a.min()))


def diverged(trainer, what: str) -> TrainingDiverged:
    """The error for ``trainer``'s run, which diverged as ``what`` says."""
    lr = getattr(trainer.optimizer, "lr", None)
    if trainer.first_step_seconds is None or lr == 0:  # no update has moved the weights
        when = "before any update" if trainer.first_step_seconds is None else "at lr 0"
        return TrainingDiverged(f"{what}, {when}: the inputs or targets are too large for "
                                f"the model's {trainer.model.dtype.name}; scale them")
    batches = getattr(trainer, "_batches", None)
    x = None if batches is None else batches.x_host
    y = None if batches is None or batches.y_host.dtype.kind != "f" else batches.y_host
    top, y_top = _largest(x), _largest(y)  # (class labels are no values to scale)
    scale = f", or scale the inputs: the largest is {top:.3g} in magnitude, where " \
        f"about 1 suits the initial weights" if top > LARGE_INPUT else ""
    if y_top > LARGE_TARGET:
        scale += f", or scale the targets: the largest is {y_top:.3g} in magnitude " \
                 f"(standardise them, e.g. with scikit-learn's TransformedTargetRegressor)"
    decay = getattr(trainer.optimizer, "weight_decay", 0)
    decay = f" or the weight decay (now {decay}: with lr x decay above 2 each step " \
        f"grows the weights)" if decay and lr * decay > 2 else ""
    return TrainingDiverged(f"{what}: lower the learning rate (now {lr}){decay}{scale}")
