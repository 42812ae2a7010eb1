"""What a classifier's fit says where its loss blew up without becoming NaN: the
trainer stops at NaN or infinity, but a loss that rose to 1e15 and came back finite
leaves dead units and weights worse than predicting every class alike."""
import math
import warnings

from sklearn.exceptions import ConvergenceWarning


def warn_if_blown_up(rows, n_classes: int, lr) -> None:
    """ConvergenceWarning where the last of ``rows`` (the fit's epochs) ends above ln K,
    the cross-entropy of predicting all K classes alike, after a loss above 10 ln K:
    the fit diverged, and its predictions are unlikely to be of use."""
    losses = [row["train_loss"] for row in rows]
    chance = math.log(max(n_classes, 2))
    if losses and losses[-1] > chance and max(losses) > 10 * chance:
        warnings.warn(f"the training loss rose to {max(losses):.3g} and ended at "
                      f"{losses[-1]:.3g}, above ln({n_classes}) = {chance:.3g}, what "
                      f"predicting every class alike scores: the fit diverged; lower the "
                      f"learning rate (now {lr}) or scale the inputs (StandardScaler)",
                      ConvergenceWarning, stacklevel=6)  # (fit or partial_fit's caller)
