"""``nnumba train --model SAVED.npz``: training on from saved weights, their classes
kept in the order the model's outputs score them, and from the training saved with
them (:mod:`nnumba.checkpoint`): its settings where not given again, its momentum
buffer, and its batch order unless ``--seed`` is given."""
from __future__ import annotations

import inspect
import warnings
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
    # from the first layer with parameters on, every one passes a gradient back (a
    # feature layer in front, HOG, needs none)
    first = next((i for i, layer in enumerate(model.layers) if layer.params()), 0)
    if not all(layer.has_gradient for layer in model.layers[first:]):
        raise ValueError(f"--model {path}: a saved perceptron (no gradient) trains on with "
                         f"nothing: train a new one with --trainer perceptron")
    return model, stored_info(path), stored_training(path)


def saved_settings(args) -> dict:
    """The settings the saved model's last run trained with ({} where it kept none);
    a plugin's loss by its PLUGIN:NAME, which a plugin installed since cannot claim."""
    training = args.saved[2] if getattr(args, "saved", None) else None
    if training is None:
        return {}
    plugin, loss = training.get("loss_plugin"), training["loss"]
    return {**{key: training[key] for key in SETTINGS},
            "loss": f"{plugin}:{loss}" if plugin and ":" not in loss else loss}


def loss_options(args) -> dict:
    """The saved run's loss options, where this run trains with that same loss, by its
    bare or its PLUGIN:NAME name ({} else: another loss takes its defaults)."""
    from ..errors import NnumbaError
    from ..registry import get_loss
    training = args.saved[2] if getattr(args, "saved", None) else None
    if not training:
        return {}
    saved = saved_settings(args)["loss"]
    try:
        same = get_loss(saved) is get_loss(args.loss)
    except (NnumbaError, LookupError):  # unknown: the run's own loss check says so; or
        same = saved == args.loss       # two plugins claim the bare name of an older file's
        if not same and training["loss_options"] and saved == args.loss.partition(":")[2]:
            warnings.warn(f"{args.model}'s last run trained with loss {saved!r} "
                          f"{training['loss_options']}, but the file does not say which "
                          f"plugin's (it is older than that), and two claim the name now: "
                          f"{args.loss} takes its defaults", RuntimeWarning, stacklevel=2)
    return training["loss_options"] if same else {}


def build_loss(args):
    """The loss to train with: --loss (or the saved run's), with the saved run's options
    where it is that run's loss."""
    from ..errors import NnumbaError
    from ..layers.validation import show
    from ..registry import get_loss
    from ..train.base import savable_options
    options, cls = loss_options(args), get_loss(args.loss)
    needed = [p.name for p in inspect.signature(cls).parameters.values() if p.default is
              p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
              and p.name not in options]
    if needed:  # else a TypeError from its __init__, which reads as nnumba's bug
        raise ValueError(f"--loss {args.loss}: the loss needs {', '.join(needed)}, which "
                         f"--loss cannot give (it builds a loss with its defaults); train "
                         f"with it from Python, where its options are given")
    try:
        loss = cls(**options)
    except (TypeError, NnumbaError) as exc:
        if not options:
            raise
        why = " ".join(str(exc).split())[:300]
        raise ValueError(f"{args.model}'s last run trained with {args.loss} {show(options)}, "
                         f"which does not build that loss now: {why}") from None
    if getattr(args, "save", None):
        savable_options(loss)  # a loss whose options no file holds: refused before the run
    return loss


def resume(args, trainer, say):
    """Give ``trainer`` the saved run's momentum buffer and, unless --seed was given,
    its batch order; ``say`` tells what came from the file.  SGD's drop_last: --drop-last,
    else the saved run's."""
    training = args.saved[2] if getattr(args, "saved", None) else None
    if hasattr(trainer, "drop_last"):
        saved = training.get("drop_last") if training else None
        trainer.drop_last = bool(args.drop_last if args.drop_last is not None else saved)
    if training is None:
        return
    same_kind = training.get("trainer", trainer.kind) == trainer.kind
    if same_kind:  # (another trainer, asked for: from the weights, without the rest)
        with warnings.catch_warnings():  # settings this command line changed: asked for
            warnings.simplefilter("ignore", RuntimeWarning)
            trainer.resume(training, rng=args.same_order)
    own = loss_options(args)  # said where they are not the loss's defaults
    try:
        defaults = type(trainer.loss)().config() if own else {}
    except (TypeError, ValueError, ArithmeticError, LookupError):  # it has no defaults
        defaults = {}
    options = ", ".join(f"{k}={v!r}" for k, v in own.items() if defaults.get(k) != v)
    kept = ([f"loss's options ({options})"] if options else []) + \
        (["momentum buffer"] if same_kind and training["velocity"] is not None else []) + \
        (["batch order"] if same_kind and args.same_order else [])
    if not same_kind:
        trainer.epochs_before = training.get("epochs", 0)  # the weights' epochs, counted on
        say(args, f"note: {args.model} was trained by --trainer {training['trainer']}; "
                  f"{trainer.kind} starts a fresh momentum buffer and the batch order of "
                  f"--seed")
    if kept:
        say(args, f"from {args.model}: its {', '.join(kept[:-1]) + ' and ' * (len(kept) > 1)}"
                  f"{kept[-1]}" + (", to go on as one run" if same_kind else ""))


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
