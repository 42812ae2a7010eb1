"""What a saved model keeps of its training, so that training on goes on where it
stopped: the trainer's kind, loss and settings, SGD's momentum buffer and the
state of the generator that orders the batches.

``nnumba.save(model, path, training=trainer)`` writes it (``nnumba train --save``
does, Ctrl-C included; :meth:`nnumba.train.Trainer.state`), :func:`stored_training`
reads it back, checked, and ``trainer.resume(stored)`` hands it to a new trainer of
the model loaded from that file.  Training on then takes the steps one longer run
would have taken, from the start of an epoch (a run stopped mid-epoch goes on with
a new one), Dropout's draws included.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import WeightsError
from .io import _SPEC_KEY, VELOCITY, _read, cast_checked, read_npz
from .npz import npz_headers
from .layers.validation import show

__all__ = ["stored_training"]


def stored_training(path) -> dict | None:
    """The training saved in ``path`` with its model (None where none was): the
    settings ("trainer", "loss", "lr", "momentum", "weight_decay", "batch_size"),
    "loss_options" (the loss's config(), to build it again:
    ``get_loss(stored["loss"])(**stored["loss_options"])``), "rng" (a numpy bit
    generator state), "layers" ({layer index: the state of its generator}, Dropout's),
    "epochs" (trained so far), "velocity" (an array or None), and in files saved since
    2026-12-06 "shuffle", "drop_last", "layout" (the trainable parameters' [name, shape]
    in the momentum buffer's order) and "loss_plugin" (the distribution of a plugin's
    loss, else None), each checked: WeightsError naming the file where one is malformed."""
    meta, _ = _read(path, spec_only=True)  # (the weights are not read here)
    headers = npz_headers(path)
    found = meta.get("training")
    if found is None:
        if VELOCITY in headers:
            raise WeightsError(f"{path}: holds a momentum buffer but no stored training")
        return None
    if not isinstance(found, dict):
        raise WeightsError(f"{path}: the stored training is {show(found)}, not a record")
    out = {"velocity": None if VELOCITY not in headers else _velocity(path, meta, headers)}
    for key, check in _CHECKS.items():
        if key not in found:
            raise WeightsError(f"{path}: stored training: no {key}")
        if not check(found[key]):
            raise WeightsError(f"{path}: stored training: {key} is {show(found[key])}")
        out[key] = found[key]
    layers = found.get("layers", {})
    if not isinstance(layers, dict) or not all(
            isinstance(k, str) and k.isdigit() for k in layers):
        raise WeightsError(f"{path}: stored training: layers is {show(layers)}, not "
                           f"{{layer index: generator state}}")
    for state in [out["rng"], *layers.values()]:
        try:  # numpy checks a state itself
            np.random.default_rng().bit_generator.state = state
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise WeightsError(f"{path}: stored training: not a generator state ({exc})") \
                from None
    options = found.get("loss_options", {})  # (files saved before 2026-12-04 keep none)
    if not isinstance(options, dict):
        raise WeightsError(f"{path}: stored training: loss_options is {show(options)}, not "
                           f"{{option: value}}")
    epochs = found.get("epochs", 0)  # (files saved before 2026-12-05 keep no count)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise WeightsError(f"{path}: stored training: epochs is {show(epochs)}, not a count")
    for key, check in _LATER.items():  # (files saved before 2026-12-06 keep neither)
        if key in found and not check(found[key]):
            raise WeightsError(f"{path}: stored training: {key} is {show(found[key])}")
    return {**out, "layers": layers, "loss_options": options, "epochs": epochs,
            **{key: found[key] for key in _LATER if key in found}}


def _number(value) -> bool:
    """A finite number >= 0 a float holds (JSON's ints have no bound: 10**400)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value)) and value >= 0
    except OverflowError:
        return False


_CHECKS = {"trainer": lambda v: v in ("sgd", "gd"),
           "loss": lambda v: isinstance(v, str) and 0 < len(v) <= 200,
           "lr": _number, "momentum": lambda v: _number(v) and v < 1, "weight_decay": _number,
           "batch_size": lambda v: type(v) is int and 1 <= v <= 2**62,
           "rng": lambda v: isinstance(v, dict)}
#: kept since 2026-12-06: SGD's sample order and short last batch, the trainable
#: parameters' names and shapes (the momentum buffer's layout), the loss's plugin
_LATER = {"shuffle": lambda v: v is None or isinstance(v, bool),
          "loss_plugin": lambda v: v is None or isinstance(v, str) and 0 < len(v) <= 200,
          "drop_last": lambda v: v is None or isinstance(v, bool),
          "layout": lambda v: isinstance(v, list) and all(
              isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and
              isinstance(e[1], list) and all(type(d) is int and d >= 0 for d in e[1])
              for e in v)}


def _velocity(path, meta, headers) -> np.ndarray:
    """The stored momentum buffer: one finite value per trainable parameter (at most
    one per array element stored; Trainer.resume checks the model's count), in the
    model's dtype; its header is checked before its data is read."""
    shape, dtype = headers[VELOCITY]
    size = sum(math.prod(s) for name, (s, _) in headers.items()
               if name not in (VELOCITY, _SPEC_KEY))
    if len(shape) != 1 or shape[0] > size or dtype.kind != "f":
        raise WeightsError(f"{path}: the stored momentum buffer is {dtype} {shape}, not "
                           f"one float per trainable parameter (at most {size})")
    velocity = read_npz(path, "nnumba weights file", None, {VELOCITY})[VELOCITY]
    return cast_checked(velocity, np.dtype(meta["dtype"]), f"{path}: momentum buffer")
