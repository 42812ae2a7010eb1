"""``nnumba train --model SAVED.npz``: training on from saved weights, their classes
kept in the order the model's outputs score them."""
from __future__ import annotations

from dataclasses import replace

import numpy as np


def load_saved(path):
    """(model, io.stored_info) of the weights in ``path``, or why they cannot train on."""
    from ..io import load_model, stored_info
    model = load_model(path)
    if not all(layer.has_gradient for layer in model.layers):
        raise ValueError(f"--model {path}: a saved perceptron (no gradient) trains on with "
                         f"nothing: train a new one with --trainer perceptron")
    return model, stored_info(path)


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
