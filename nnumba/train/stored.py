"""What a trainer compares with a stored training (nnumba.checkpoint): the loss's
options as a JSON file holds them, and the settings a resumed run changes."""
from __future__ import annotations

import json
import warnings

from ..errors import SaveError
from ..jsonfile import jsonable
from ..layers.validation import show


def savable_options(loss) -> dict:
    """The loss's config() as a JSON file holds it: a resumed run rebuilds the same
    loss from it (FocalLoss's gamma, a sum reduction), not one with the defaults."""
    options = loss.config()
    try:
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
            raise TypeError("not a dict of option names")
        options = {k: jsonable(v) for k, v in options.items()}
        json.dumps(options, allow_nan=False)
    except (TypeError, ValueError):
        raise SaveError(f"save: training= keeps the loss's options, and "
                        f"{type(loss).__name__}.config() gave {show(options)}, which a JSON "
                        f"file cannot hold") from None
    return options


def warn_settings(trainer, stored: dict, name: str):
    """A warning naming the stored settings this trainer does not share: training
    goes on (fine-tuning may change them), but not as the one run it continues."""
    from ..registry import get_registry
    loss = get_registry().name_of("loss", type(trainer.loss)) or type(trainer.loss).__name__
    now = {"loss": loss, **getattr(trainer.optimizer, "config", dict)(),
           "batch_size": trainer.batch_size}
    if stored.get("loss") == loss and stored.get("loss_options"):  # ({}: a file too old)
        try:
            now["loss_options"] = savable_options(trainer.loss)
        except SaveError:  # options no file holds: they cannot be the stored ones
            now["loss_options"] = trainer.loss.config()
    differ = [f"{key} {show(stored[key])} -> {show(value)}" for key, value in now.items()
              if key in stored and stored[key] != value]
    if differ:
        warnings.warn(f"{name}: this trainer's settings differ from the stored run's "
                      f"({'; '.join(differ)}): training goes on from its momentum and "
                      f"draws, but not as that run would have", RuntimeWarning,
                      stacklevel=3)
