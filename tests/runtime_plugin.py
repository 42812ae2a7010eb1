"""A plugin registered for the length of a ``with`` block, for tests that need a
layer, loss or model the registry finds: ``with runtime_plugin(losses={"Name": cls}):``
registers one whose ``nnumba_register_<kind>`` hooks return those dicts."""
from contextlib import contextmanager

import nnumba


@contextmanager
def runtime_plugin(**hooks):
    plugin = type("RuntimePlugin", (), {})()
    for kind, entries in hooks.items():
        setattr(plugin, f"nnumba_register_{kind}", nnumba.hookimpl(lambda e=entries: e))
    name = nnumba.register_plugin(plugin)
    try:
        yield name
    finally:
        nnumba.unregister_plugin(name)
