"""The named-model kit: a model as ``nnumba.build(name)`` and ``nnumba train --model
name`` build it (:mod:`nnumba.testing`)."""
from __future__ import annotations

import math

import numpy as np

import nnumba
from ..errors import NnumbaError
from .fused import check_fused
from .inputs import example_batch
from .failures import draw_alike
from .layers import ConformanceError
from .losses import _targets


def _seed0(name, options):
    """``nnumba.build(name, seed=0, **options)``, an option named seed being the model's."""
    from ..registry import get_model
    return nnumba.Sequential.from_spec(get_model(name).spec(name, **options), seed=0)


def check_model(name: str, /, *, train: bool = True, **options):
    """The model registered as ``name``, built with ``options``: the same seed builds
    the same weights; its ``input_shape`` goes through every layer, and a batch of
    two gives finite outputs; with ``train``, the loss of its ``train_defaults``
    (registered, and taking those outputs) gives a finite gradient for every
    parameter; a fused step (``fuse_after``) computes what its layers do one after
    another, gradients too; its spec builds it again (as a saved file does), computing the same;
    where it takes ``inputs`` or ``classes`` (what ``nnumba train`` sets from the
    data), they set the input and output widths.  Returns the model."""
    from ..models.named import FALLBACK_DEFAULTS
    from ..registry import get_loss, get_model
    if not isinstance(train, (bool, np.bool_)):  # "no" is truthy: it would train
        raise ConformanceError(f"check_model: train must be True or False, got {train!r:.80}")
    try:
        named = get_model(name)
        model = _seed0(name, options)
        loss = get_loss({**FALLBACK_DEFAULTS, **named.train_defaults}["loss"])()
    except NnumbaError as exc:
        said = str(exc).removeprefix(f"model {name!r}: ")
        raise ConformanceError(f"model {name!r}: {said}") from exc
    try:
        shape = named.input_shape_for(name, **options)
    except NnumbaError as exc:  # it names the model
        raise ConformanceError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - the plugin's own shape function
        raise ConformanceError(f"model {name!r}: its input_shape: {exc}") from exc
    if shape is None:
        shape = _first_layer_shape(name, model)
    again = _seed0(name, options)
    if not np.array_equal(again.flat_params, model.flat_params) or not all(
            draw_alike(a, b) for a, b in zip(again.layers, model.layers)):
        raise ConformanceError(f"model {name!r}: two builds from seed 0 differ (in their "
                               f"weights or their layers' random_generator()): its layers "
                               f"must draw from the generator they are given")
    if math.prod(shape) > 2**24:  # two samples of it: an array the kit can make
        raise ConformanceError(f"model {name!r}: its input_shape {shape} holds more than "
                               f"2**24 values a sample, past what the kit runs")
    x = example_batch(model.layers[0], (2, *shape), np.random.default_rng(0)).astype(model.dtype)
    try:
        model.output_shape(shape)
        y = model.forward(x)
    except NnumbaError as exc:
        raise ConformanceError(f"model {name!r}: its input_shape {shape} does not go "
                               f"through its layers: {exc}") from exc
    if not np.isfinite(y).all():
        raise ConformanceError(f"model {name!r}: a batch of its first layer's example_input "
                               f"gives NaN or inf")
    if train:
        _check_gradient(name, model, loss, y)
    try:
        check_fused(name, model, x, train)
    except ConformanceError:
        raise
    except Exception as exc:  # noqa: BLE001 - a fused step's own code
        raise ConformanceError(f"model {name!r}: comparing its fused steps with their layers "
                               f"raised {type(exc).__name__}: {exc}") from exc
    again = nnumba.Sequential.from_spec(model.spec())
    pairs = list(zip(again.params(), model.params()))
    same = len(pairs) == len(model.params()) == len(again.params()) and all(
        a == b and p.value.shape == q.value.shape for (a, p), (b, q) in pairs)
    if same:  # every parameter, state too (a training forward above moved it), as a file
        for (_, p), (_, q) in pairs:
            p.value[...] = q.value
    if not same or not np.array_equal(again.predict(x), model.predict(x)):
        raise ConformanceError(f"model {name!r}: its spec builds a model that computes "
                               f"otherwise (a saved file would load as that one)")
    _check_widths(name, named, options)
    return model


def _check_gradient(name, model, loss, y):
    kinds = sorted({kind for *_, kind in getattr(type(loss), "examples", [])})
    targets = _targets(kinds[0] if kinds else "classes", y.shape, np.random.default_rng(1))
    model.zero_grad()
    try:
        loss.forward(y, targets)
        gradient = loss.backward()
    except Exception as exc:  # noqa: BLE001 - the loss refusing these outputs
        raise ConformanceError(f"model {name!r}: its train_defaults loss "
                               f"{type(loss).__name__} does not train its outputs of "
                               f"shape {y.shape[1:]}: {exc}") from exc
    try:
        model.backward(gradient)
    except Exception as exc:  # noqa: BLE001 - a layer's own backward
        raise ConformanceError(f"model {name!r}: its backward failed: {exc}") from exc
    if not np.isfinite(model.flat_grads).all():
        raise ConformanceError(f"model {name!r}: a gradient holds NaN or inf")


def _first_layer_shape(name, model) -> tuple:
    """A bare build function's model gives no input_shape: the one its first layer
    fixes (a Linear's), or a failure saying how to give one."""
    first = model.layers[0].input_shape()
    if first is None or not all(isinstance(d, (int, np.integer)) for d in first):
        raise ConformanceError(
            f"model {name!r}: it gives no input_shape, and its first layer "
            f"({model.layers[0].type_name}) does not fix one; register "
            f"NamedModel(build, input_shape=...) (a tuple, or a function of the options)")
    return tuple(int(d) for d in first)


def _check_widths(name, named, options):
    """``inputs`` and ``classes``, where the model takes them, as nnumba train sets them."""
    known = named.options()
    # two widths each: a model ignoring the option passed where one was its default
    checks = [(option, width) for option, widths in (("inputs", (7, 5)), ("classes", (3, 5)))
              for width in ((options[option],) if option in options else widths)]
    for option, width in checks:  # (a width given: the one to check)
        if option not in known or isinstance(width, bool) or not isinstance(
                width, (int, np.integer)):
            continue
        changed = {**options, option: width}
        try:
            model = _seed0(name, changed)
            shape = named.input_shape_for(name, **changed)
            if shape is None:
                shape = _first_layer_shape(name, model)
            got = math.prod(shape) if option == "inputs" else \
                math.prod(model.output_shape(shape))
            if option == "inputs" and got == width:
                model.output_shape(shape)  # the model built takes that input too
        except NnumbaError as exc:
            raise ConformanceError(f"model {name!r}: {option}={width}, as nnumba train may "
                                   f"set it: {exc}") from exc
        if got != width:
            raise ConformanceError(f"model {name!r}: {option}={width} gives "
                                   f"{'an input' if option == 'inputs' else 'an output'} of "
                                   f"{got} values per sample; nnumba train sets {option} "
                                   f"from the data and expects {width}")
