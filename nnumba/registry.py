"""The plugin registry: one pluggy PluginManager holding the built-ins and every
plugin found in the ``nnumba`` entry-point group, with lookup by name.

Built-ins register through the same hooks a third party uses; there is no
private back door. ``NNUMBA_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import warnings
from dataclasses import dataclass

import pluggy

from . import hookspecs
from .errors import RegistryError

ENTRY_POINT_GROUP = "nnumba"

# Modules of nnumba itself that are plugins; each implements some hooks.
BUILTIN_PLUGINS = (
    "nnumba.layers.linear",
    "nnumba.layers.activation",
    "nnumba.layers.shape",
    "nnumba.layers.conv",
    "nnumba.layers.pool",
    "nnumba.losses",
    "nnumba.models.mlp",
    "nnumba.models.lenet",
    "nnumba.data.plugin",
    "nnumba.layers.dropout",
    "nnumba.layers.adaptive_pool",
    "nnumba.models.alexnet",
    "nnumba.models.image_linear",
    "nnumba.device",
)

# kind -> hook name
KINDS = {
    "layer": "nnumba_register_layers",
    "loss": "nnumba_register_losses",
    "model": "nnumba_register_models",
    "dataset": "nnumba_register_datasets",
    "device": "nnumba_register_devices",
}


@dataclass(frozen=True)
class Entry:
    """One registered thing and where it came from."""
    kind: str
    name: str
    obj: object
    plugin: str
    distribution: str


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    distribution: str
    error: str


class Registry:
    """What the plugins registered, collected once and kept until a plugin is added."""

    def __init__(self, autoload: bool | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._dists: dict[str, str] = {}
        self._cache: dict[str, tuple[dict, dict]] = {}
        for module_name in BUILTIN_PLUGINS:
            self.pm.register(importlib.import_module(module_name), name=module_name)
            self._dists[module_name] = "nnumba (built-in)"
        if autoload is None:
            autoload = os.environ.get("NNUMBA_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
        if autoload:
            self._load_entry_points()

    def _load_entry_points(self):
        # pluggy's load_setuptools_entrypoints stops at the first broken
        # plugin; we load each one alone so a broken one costs only itself.
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"
            if self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except Exception as exc:  # a plugin's bug must not take nnumba down
                failure = PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}")
                self.failures.append(failure)
                warnings.warn(
                    f"nnumba plugin {ep.name!r} (from {dist}) failed to load and was "
                    f"skipped: {failure.error}", RuntimeWarning, stacklevel=2)
                continue
            self._dists[ep.name] = dist

    def register(self, plugin, name: str | None = None) -> str:
        """Register a plugin object at run time; raise at once on a name clash."""
        name = self.pm.register(plugin, name=name)
        self._dists.setdefault(name, "(registered at run time)")
        self._cache.clear()
        try:
            for kind in KINDS:
                _, clashes = self._collect(kind)
                if clashes:
                    raise RegistryError(next(iter(clashes.values())))
        except Exception:
            self.unregister(name)
            raise
        return name

    def unregister(self, name: str):
        self.pm.unregister(name=name)
        self._dists.pop(name, None)
        self._cache.clear()

    def _collect(self, kind: str) -> tuple[dict[str, Entry], dict[str, str]]:
        if kind not in self._cache:
            entries: dict[str, Entry] = {}
            clashes: dict[str, str] = {}
            hook = getattr(self.pm.hook, KINDS[kind])
            for impl in hook.get_hookimpls():  # registration order: first wins
                for name, obj in (impl.function() or {}).items():
                    entry = Entry(kind, name, obj, impl.plugin_name,
                                  self._dists.get(impl.plugin_name, "?"))
                    if name in entries:
                        first = entries[name]
                        clashes[name] = (
                            f"{kind} {name!r} is registered twice: by plugin "
                            f"{first.plugin!r} ({first.distribution}) and by plugin "
                            f"{entry.plugin!r} ({entry.distribution})")
                        continue
                    entries[name] = entry
            self._cache[kind] = (entries, clashes)
        return self._cache[kind]

    def entries(self, kind: str) -> dict[str, Entry]:
        return dict(self._collect(kind)[0])

    def clashes(self, kind: str) -> dict[str, str]:
        return dict(self._collect(kind)[1])

    def get(self, kind: str, name: str):
        entries, clashes = self._collect(kind)
        if name in clashes:
            raise RegistryError(clashes[name])
        if name not in entries:
            raise RegistryError(unknown_name_message(kind, name, entries))
        return entries[name].obj


def unknown_name_message(kind: str, name: str, known) -> str:
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    if name.lower() in by_lower and by_lower[name.lower()] not in close:
        close.insert(0, by_lower[name.lower()])
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return (f"unknown {kind} {name!r}{hint} Known {kind}s: "
            f"{', '.join(sorted(known)) or '(none)'}.")


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def register_plugin(plugin, name: str | None = None) -> str:
    """Register a plugin object (a module or any object with hookimpls) now.

    For tests and notebooks; packages use the ``nnumba`` entry-point group.
    Returns the plugin's name, which :func:`unregister_plugin` takes.
    """
    return get_registry().register(plugin, name)


def unregister_plugin(name: str):
    get_registry().unregister(name)


def get_layer(name: str):
    return get_registry().get("layer", name)


def get_loss(name: str):
    return get_registry().get("loss", name)


def get_model(name: str):
    """The NamedModel registered as ``name`` (``get_model(name)(**options)`` is its spec)."""
    from .models import named
    return named(get_registry().get("model", name))


def get_dataset(name: str):
    return get_registry().get("dataset", name)
