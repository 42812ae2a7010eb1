"""What a trainer compares with a stored training (nnumba.checkpoint): the loss's
options as a JSON file holds them, the settings a resumed run changes, and the
momentum buffer and epoch count it goes on from."""
from __future__ import annotations

import json
import warnings

import numpy as np

from ..errors import SaveError, SpecError
from ..jsonfile import jsonable
from ..layers.validation import check_cast, show


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
           "batch_size": trainer.batch_size, "shuffle": getattr(trainer, "shuffle", None),
           "drop_last": getattr(trainer, "drop_last", None)}
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


def layout(model) -> list:
    """[[name, shape], ...] of the trainable parameters in the flat buffer's order: the
    layout of a stored momentum buffer."""
    return [[name, list(p.value.shape)] for name, p in model.params() if p.trainable]


def check_layout(stored: dict, model, name: str):
    """SpecError where the stored momentum buffer was laid out for other parameters
    (another model of as many values would take it onto the wrong weights)."""
    kept, now = stored.get("layout"), layout(model)  # (files before 2026-12-06 keep none)
    if kept is not None and kept != now:
        first = next((i for i, (a, b) in enumerate(zip(kept, now)) if a != b),
                     min(len(kept), len(now)))
        def entry(items):
            return f"{items[first][0]} {tuple(items[first][1])}" if first < len(items) \
                else "nothing"
        raise SpecError(f"{name}: the stored training belongs to a model of other parameters "
                        f"(its parameter {first}: {entry(kept)}; this model's: {entry(now)}); "
                        f"resume the model saved with it (nnumba.load_model(path))")


def check_velocity(velocity, model, name: str):
    """SpecError unless the stored momentum buffer is None or a finite float array of
    one value per trainable parameter, which the model's dtype holds."""
    n = model.flat_params.size
    why = None if velocity is None else \
        f"is {show(velocity)}, not a float array" if not isinstance(
            velocity, np.ndarray) or velocity.dtype.kind != "f" else \
        f"has {velocity.size} values of shape {velocity.shape}, the model {n} trainable " \
        f"parameters" if velocity.shape != (n,) else \
        "holds NaN or inf" if not np.isfinite(velocity).all() else None
    if why:
        raise SpecError(f"{name}: the stored momentum buffer {why}")
    if velocity is not None:  # a float64 run's, on a float32 model: not to infinity
        check_cast(name, "the stored momentum buffer", velocity, model.dtype,
                   f"resume on a {velocity.dtype.name} model")


def stored_epochs(stored: dict, name: str) -> int:
    """The epochs the stored run trained (0 in a record made before they were kept)."""
    epochs = stored.get("epochs", 0)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise SpecError(f"{name}: the stored epochs {show(epochs)} is not a count")
    return int(epochs)
