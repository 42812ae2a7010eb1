"""The layer kit's save/load checks: a model saves and loads the layer, which then
computes the same, and training moves its state as it moved the saved one's; in a
model a training forward moves the state as it does in the layer alone."""
from __future__ import annotations

import copy
import tempfile
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import RegistryError
from .failures import ConformanceError, _fail, _worst, same_draws
from .inputs import other_batch


@contextmanager
def _registered(cls):
    """Registers the layer class ``cls`` for the length of a ``with`` when the registry
    does not know it yet (save/load rebuilds layers by name)."""
    from ..hookspecs import hookimpl
    from ..registry import get_registry, register_plugin, unregister_plugin
    if get_registry().name_of("layer", cls) is not None:
        yield  # registered already (maybe as PLUGIN:NAME, behind a built-in)
        return

    plugin = types.SimpleNamespace(nnumba_register_layers=hookimpl(lambda: {cls.type_name: cls}))
    try:
        name = register_plugin(plugin, f"nnumba-testing-{cls.type_name}")
    except RegistryError as exc:
        raise ConformanceError(f"{cls.type_name}: cannot be registered for the save/load "
                               f"check: {exc}") from None
    try:
        yield
    finally:
        unregister_plugin(name)


def check_round_trip(layer, x):
    """``layer`` (an instance) in a one-layer model, on the batch ``x`` (an array of the
    layer's dtype): its state kept in the model's buffers, its outputs in evaluation
    mode unchanged by a save and load (``nnumba.save`` / ``load_model``), and a loaded
    copy's training moving its state as the original's does.  check_all runs it for
    every example; a failure is a ConformanceError saying what usually causes it."""
    from .. import io
    from ..model import Sequential
    alone = copy.deepcopy(layer)
    model = Sequential(layer)  # which moves the parameters into the model's buffers
    check_state_in_model(model, alone, x)
    model.eval()
    model.forward(x)  # where a layer might keep param.value, then the model rebinds them
    model.astype(model.dtype)
    for _, p in model.params():  # and they change, as training changes them
        if p.trainable:
            p.value[...] *= 0.75
    before = model.forward(x).copy()
    with _registered(type(layer)), tempfile.TemporaryDirectory() as tmp:
        path = io.save(model, Path(tmp) / "layer.npz")
        try:
            twin = io.load_model(path)
        except Exception as exc:  # noqa: BLE001 - reported with what usually causes it
            _fail(layer, f"save/load cannot rebuild it from its spec {model.spec()}: "
                         f"{str(exc).split(': ', 1)[-1]}; the arguments of __init__ are its "
                         f"configuration: name each one (no *args or **kwargs) and keep "
                         f"them JSON values")
    twin.eval()
    if twin.spec() != model.spec():
        _fail(layer, f"spec changed through save/load: {model.spec()} -> {twin.spec()}")
    if not np.array_equal(twin.forward(x), before):
        _fail(layer, "outputs differ after a save/load round trip: a model moves the "
                     "parameters into its own buffers (and again in astype and to()), so a "
                     "layer that computes with an array kept from __init__, "
                     "reset_parameters or an earlier forward (not param.value read at "
                     "each call) ignores the loaded values, and its training")
    check_training_resumes(model, twin, x)


def check_training_resumes(model, twin, x):
    """A training forward moves the state of a loaded ``twin`` as it moves the saved
    ``model``'s (the same draws for both, on an input the state has not settled on):
    state kept in a plain attribute (a step count, a flag) is not saved, and the
    twin's training would start it again."""
    layer, other = model.layers[0], twin.layers[0]
    x = other_batch(layer, x, np.random.default_rng(1))
    again = same_draws(layer, other)
    model.train().forward(x)
    again()
    twin.train().forward(x)
    for name, p in layer.params().items():
        loaded = other.params()[name].value
        if not p.trainable and not np.array_equal(loaded, p.value, equal_nan=True):
            worst = _worst(loaded, p.value)
            _fail(layer, f"after a save/load round trip a training forward moved its state "
                         f"{name} to {float(loaded[worst])!r} at {worst}, the saved layer's "
                         f"to {float(p.value[worst])!r}: what else decides how training moves the "
                         f"state (a step count, a flag) is kept outside its parameters, and "
                         f"is lost; keep it in a trainable=False parameter (docs/plugins.md)")


def check_state_in_model(model, alone, x):
    """A training forward moves the layer's state (``trainable=False``) in a model as
    it does in the layer alone: a model moves the parameters into its own buffers,
    so an update through an array kept from reset_parameters is lost to what the
    model saves, and no output shows it."""
    layer = model.layers[0]
    model.train()
    alone.train(True)
    again = same_draws(layer, alone)
    model.forward(x)
    again()
    alone.forward(x)
    for name, p in alone.params().items():
        now = layer.params()[name].value
        if not p.trainable and not np.array_equal(now, p.value):
            worst = _worst(now, p.value)
            _fail(layer, f"in a model a training forward left its state {name} at {worst} "
                         f"{now[worst]:.8g}, alone it moved it to {p.value[worst]:.8g}: a "
                         f"model moves the parameters into its own buffers, so the layer "
                         f"updates an array kept from __init__ or reset_parameters; write "
                         f"into param.value read at each call")
