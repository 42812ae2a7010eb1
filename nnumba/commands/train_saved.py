"""``nnumba train --model SAVED.npz``: training on from saved weights, their classes
kept in the order the model's outputs score them, and from the training saved with
them (:mod:`nnumba.checkpoint`): its settings where not given again, its momentum
buffer, and its batch order unless ``--seed`` is given."""
from __future__ import annotations

from dataclasses import replace

import numpy as np


#: what a saved run's settings fill in where the command line leaves them out
SETTINGS = ("trainer", "loss", "lr", "momentum", "weight_decay", "batch_size")


def load_saved(path):
    """(model, io.stored_info, the stored training or None) of the weights in ``path``,
    or why they cannot train on."""
    from ..checkpoint import stored_training
    from ..io import load_model, stored_info
    model = load_model(path)
    if not all(layer.has_gradient for layer in model.layers):
        raise ValueError(f"--model {path}: a saved perceptron (no gradient) trains on with "
                         f"nothing: train a new one with --trainer perceptron")
    return model, stored_info(path), stored_training(path)


def saved_settings(args) -> dict:
    """The settings the saved model's last run trained with ({} where it kept none)."""
    training = args.saved[2] if getattr(args, "saved", None) else None
    return {} if training is None else {key: training[key] for key in SETTINGS}


def resume(args, trainer, say):
    """Give ``trainer`` the saved run's momentum buffer and, unless --seed was given,
    its batch order; ``say`` tells what came from the file."""
    training = args.saved[2] if getattr(args, "saved", None) else None
    if training is None:
        return
    trainer.resume(training, rng=args.same_order)
    kept = (["momentum buffer"] if training["velocity"] is not None else []) + \
        (["batch order"] if args.same_order else [])
    if kept:
        say(args, f"from {args.model}: its {' and '.join(kept)}, to go on as one run")


def as_saved_classes(args, data, kind: str, say):
    """``data`` with its targets as the saved model's outputs score its stored
    classes: the same names in another order are renumbered ("classes", "values":
    the labels; "signs": -1 and +1 swapped); other names are a note, and the outputs
    learn them (``say`` prints it)."""
    stored = args.saved[1]["classes"]
    if stored is None or list(stored) == list(data.classes):
        return data
    if sorted(stored) != sorted(data.classes) or (kind == "signs") != (len(stored) == 2):
        say(args, f"note: {args.model}'s outputs scored {', '.join(stored)[:200]}; they learn "
                  f"{data.name}'s classes now: {', '.join(data.classes)[:200]}")
        return data
    if kind == "signs":  # the same two classes, the other way round
        return replace(data, y_train=-data.y_train, y_test=-data.y_test, classes=list(stored))
    order = np.array([stored.index(name) for name in data.classes])  # ours -> its output
    return replace(data, y_train=order[data.y_train], y_test=order[data.y_test],
                   classes=list(stored))
