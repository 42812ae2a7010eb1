"""A model for a data set: the settings it trains with, and a model built (or a
named one adapted) for the data's shape; ``nnumba train`` and
:mod:`nnumba.sklearn` both start here."""
from __future__ import annotations

import copy
import math


from ..errors import DTypeError, NnumbaError, ShapeError, SpecError
from ..layers import Layer
from ..layers.declared_shape import fixed_input_shape
from ..model import Sequential
from ..registry import get_model
from .named import FALLBACK_DEFAULTS


def is_model_name(model) -> bool:
    """A registered model's name, not a spec (JSON text starts with "[")."""
    return isinstance(model, str) and not model.lstrip().startswith("[")


def train_defaults(model) -> tuple[dict, set]:
    """(settings, the names of those the model gave): a registered name's
    train_defaults over FALLBACK_DEFAULTS, or FALLBACK_DEFAULTS alone."""
    # (NamedModel checked its keys)
    own = dict(get_model(model).train_defaults) if is_model_name(model) else {}
    return {**FALLBACK_DEFAULTS, **own}, set(own)


def say_defaults(filled: dict, own: set, whose: str) -> str | None:
    """'defaults: lr 0.1 (mlp's train_defaults); loss CrossEntropy (nnumba's
    fallback)' for the settings ``filled`` in, or None where none were."""
    show = lambda keys: ", ".join(f"{k} {filled[k]}" for k in keys)  # noqa: E731
    mine = [k for k in filled if k in own]
    rest = [k for k in filled if k not in own]
    parts = ([f"{show(mine)} ({whose})"] if mine else []) + \
        ([f"{show(rest)} (nnumba's fallback)"] if rest else [])
    return "defaults: " + "; ".join(parts) if parts else None


def model_for_data(model, sample_shape, outputs=None, *, options=None, seed=0,
                   own_shape=None):
    """(Sequential, per-sample input shape) for samples of ``sample_shape``.

    ``model``: a registered name, a spec (list of layer dicts) or a list of Layer
    objects (copied, so the caller's stay as they are). A named model's
    ``inputs`` and ``classes`` options, where it has them and ``options`` does
    not set them, come from the data (features, ``outputs``); where the model
    does not take ``sample_shape`` but its own input shape has as many values
    (LeNet on rows of 784 pixels), that shape is returned to reshape to;
    ``own_shape`` is that shape for layers (a saved model's input shape; without it,
    the one their first layer fixes, as ``nnumba summary`` shows).
    ``seed``: None keeps the weights of given layers.  ``outputs``: the per-sample output width the data needs (None: unchecked).
    Raises ShapeError naming what does not fit."""
    shape = tuple(sample_shape)
    if is_model_name(model):
        named, options = get_model(model), dict(options or {})
        known = named.options()
        if "inputs" in known and "inputs" not in options:
            options["inputs"] = math.prod(shape)
        if "classes" in known and "classes" not in options and outputs is not None:
            options["classes"] = int(outputs)
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
        what = f"model {model!r}" + (f" ({shown})" if options else "")
        try:  # (not build(): an option named seed is the model's, refused by its spec)
            net = Sequential.from_spec(named.spec(model, **options), seed=seed)
            own_shape = named.input_shape_for(model, **options)
        except NnumbaError:  # an unknown option, a value the builder refused: named already
            raise
        except (TypeError, ValueError) as exc:  # a bad option value
            kind = DTypeError if isinstance(exc, TypeError) else SpecError
            raise kind(f"{what}: {exc}") from None
    else:
        if options:
            raise SpecError("model options apply to named models, not to a spec or layers")
        what = "the model"
        if isinstance(model, (list, tuple)) and model and all(isinstance(m, Layer) for m in model):
            net = Sequential(*copy.deepcopy(list(model)), seed=seed)
        else:
            net = Sequential.from_spec(model, seed=seed)
    try:
        out = net.output_shape(shape)
    except ShapeError:
        if own_shape is None:  # a spec's, or a file saved without it: what its layers fix
            own_shape = fixed_input_shape(net.layers)
            if own_shape is None or math.prod(own_shape) != math.prod(shape):
                raise  # (the layer's own message: no shape of as many values fits)
        if math.prod(own_shape) != math.prod(shape):
            raise ShapeError(f"{what} takes samples of shape {tuple(own_shape)} "
                             f"({math.prod(own_shape)} values); the data's have shape "
                             f"{shape} ({math.prod(shape)} values)") from None
        shape = tuple(own_shape)
        out = net.output_shape(shape)
    if outputs is not None and tuple(out) != (int(outputs),):
        raise ShapeError(f"{what} gives outputs of shape {tuple(out)} per sample; the data "
                         f"needs ({int(outputs)},) (one per class or target)")
    return net, shape
