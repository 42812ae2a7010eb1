"""The plugin registry: one pluggy PluginManager holding the built-ins and every
plugin found in the ``nnumba`` entry-point group, with lookup by name.

Built-ins register through the same hooks a third party uses; there is no
private back door. ``NNUMBA_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points.

No plugin can take the others down:

- A plugin that fails to import, or whose hook raises or returns something
  other than ``{name: thing}``, is skipped with a RuntimeWarning naming it,
  and listed by ``nnumba plugins``.
- Names: built-ins always win. Every entry is also reachable under its
  qualified name ``PLUGIN:NAME`` (PLUGIN: the entry-point name). A third-party
  entry that a built-in shadows is reachable that way only; a name that two
  third-party plugins claim is ambiguous: the bare name raises RegistryError
  naming both, and each stays reachable qualified. Each clash is warned about
  when the plugins load.
- ``register_plugin`` (at run time) raises at once on a clash or a failing
  hook instead, and registers nothing: whoever calls it is there to rename.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import os
import sys
import types
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pluggy

from . import hookspecs
from .errors import RegistryError
# plural and unknown_name_message are public here too (nnumba.experiments uses them)
from .registry_hints import (LONGEST_NAME, invalid_entry, misnamed_hooks,  # noqa: F401
                             near_miss_entry_points, plural, unknown_name_message)

ENTRY_POINT_GROUP = "nnumba"
BUILTIN_DISTRIBUTION = "nnumba (built-in)"
RUNTIME_DISTRIBUTION = "registered at run time"
# why a name an installed plugin would give is unknown (said wherever that may be so)
AUTOLOAD_OFF = "installed plugins are not loaded: NNUMBA_DISABLE_PLUGIN_AUTOLOAD is set"

# Modules of nnumba itself that are plugins; each implements some hooks.
BUILTIN_PLUGINS = (
    "nnumba.layers.linear",
    "nnumba.layers.activation",
    "nnumba.layers.shape",
    "nnumba.layers.conv",
    "nnumba.layers.conv3d",
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

    @property
    def qualified(self) -> str:
        """``PLUGIN:NAME``, which finds this entry even where its bare name does not."""
        return f"{self.plugin}:{self.name}"

    @property
    def builtin(self) -> bool:
        return self.plugin in BUILTIN_PLUGINS


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    distribution: str
    error: str


@dataclass
class _Table:
    """What one hook gave: the entries by bare and by qualified name, the names
    that need qualifying (with why), and the plugins whose hook failed."""
    names: dict[str, Entry] = field(default_factory=dict)
    qualified: dict[str, Entry] = field(default_factory=dict)
    clashes: dict[str, str] = field(default_factory=dict)  # ambiguous bare name -> message
    shadowed: dict[str, str] = field(default_factory=dict)  # qualified name -> message
    failures: list[PluginFailure] = field(default_factory=list)


class Registry:
    """What the plugins registered, collected once and kept until a plugin is added."""

    def __init__(self, autoload: bool | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._load_failures: list[PluginFailure] = []
        self._dists: dict[str, str] = {}
        self._cache: dict[str, _Table] = {}
        self._warned: set[str] = set()
        for module_name in BUILTIN_PLUGINS:
            self.pm.register(importlib.import_module(module_name), name=module_name)
            self._dists[module_name] = BUILTIN_DISTRIBUTION
        if autoload is None:
            autoload = os.environ.get("NNUMBA_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
        self.autoload = autoload
        if autoload:
            self._load_entry_points()
        for kind in KINDS:  # now, so that clashes and failing hooks are warned about at load
            self._table(kind)

    def plugin_of(self, filename: str) -> str | None:
        """The name of the installed plugin whose package (or lone module) holds
        ``filename``; None for nnumba's own code and anything else."""
        filename = os.path.abspath(filename)
        for name, plugin in self.pm.list_name_plugin():
            if self._dists.get(name) == BUILTIN_DISTRIBUTION:
                continue
            module = plugin if isinstance(plugin, types.ModuleType) else \
                sys.modules.get(type(plugin).__module__)
            top = sys.modules.get(getattr(module, "__name__", "").split(".")[0])
            path = os.path.abspath(getattr(top, "__file__", None) or "/nonexistent")
            if filename == path or (getattr(top, "__path__", None) and
                                    filename.startswith(os.path.dirname(path) + os.sep)):
                return name
        return None

    def _load_entry_points(self):
        # pluggy's load_setuptools_entrypoints stops at the first broken
        # plugin; we load each one alone so a broken one costs only itself.
        for name, dist, problem in near_miss_entry_points(ENTRY_POINT_GROUP):
            self._load_failures.append(PluginFailure(name, dist, problem))
            self._warn(f"nnumba plugin {name!r} (from {dist}): {problem}")
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"
            if self.pm.has_plugin(ep.name):
                continue
            try:
                with contextlib.redirect_stdout(sys.stderr):  # a banner: not in --json's stdout
                    plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except (KeyboardInterrupt, GeneratorExit):
                raise
            except BaseException as exc:  # a plugin's bug (sys.exit, pytest's Skipped): skipped
                failure = PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}")
                self._load_failures.append(failure)
                self._warn(f"nnumba plugin {ep.name!r} (from {dist}) failed to load and was "
                           f"skipped: {failure.error}")
                continue
            self._dists[ep.name] = dist
            for problem in misnamed_hooks(plugin, KINDS.values()):  # its other hooks still count
                self._load_failures.append(PluginFailure(ep.name, dist, problem))
                self._warn(f"nnumba plugin {ep.name!r} (from {dist}): {problem}")

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that failed to import, then hooks that failed (skipped, warned about)."""
        return self._load_failures + [f for kind in KINDS for f in self._table(kind).failures]

    def register(self, plugin, name: str | None = None) -> str:
        """Register a plugin object at run time; raise RegistryError at once, and keep
        nothing, on a name clash or a failing hook."""
        if plugin is None or isinstance(plugin, (str, bytes, int, float)):
            raise RegistryError(f"a plugin is a module or an object with hook implementations, "
                                f"got {plugin!r:.80}")
        if name is not None and (not isinstance(name, str) or not name.strip() or ":" in name
                                 or not name.isprintable() or len(name) > LONGEST_NAME):
            # (a line break would split `nnumba plugins`' table, as in an entry's name)
            raise RegistryError(f"a plugin name is a non-empty string of printable characters "
                                f"without ':' (which separates plugin and entry names), at "
                                f"most {LONGEST_NAME} long, got {name!r:.80}")
        try:
            name = self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:  # a name taken, a bad hook
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self.pm.is_registered(plugin):  # pluggy's message names the new name
                why = f"it is registered already, as plugin {self.pm.get_name(plugin)!r}"
            elif name is not None and self.pm.has_plugin(name):
                why = "a plugin of that name is registered already"
            raise RegistryError(f"plugin {name or plugin!r:.80} not registered: "
                                f"{why[:200]}") from None
        self._dists.setdefault(name, RUNTIME_DISTRIBUTION)
        self._cache.clear()
        try:
            for problem in misnamed_hooks(plugin, KINDS.values()):
                raise RegistryError(f"plugin {name!r} not registered: {problem}")
            for kind in KINDS:
                table = self._collect(kind)
                for f in table.failures:
                    if f.plugin == name:
                        raise RegistryError(f"plugin {name!r} not registered: {f.error}")
                for e in table.qualified.values():
                    if e.plugin == name and table.names.get(e.name) is not e:
                        first = next(o for o in table.qualified.values()
                                     if o.name == e.name and o.plugin != name)
                        raise RegistryError(
                            f"{kind} {e.name!r} is registered twice: by plugin {first.plugin!r} "
                            f"({first.distribution}) and by plugin {name!r}; rename it")
        except Exception:
            self.unregister(name)
            raise
        return name

    def unregister(self, name: str):
        if not isinstance(name, str) or not self.pm.has_plugin(name):
            names = ", ".join(sorted(n for n, _ in self.pm.list_name_plugin()))
            raise RegistryError(f"no plugin named {name!r:.80} is registered; registered: "
                                f"{names}")
        self.pm.unregister(name=name)
        self._dists.pop(name, None)
        self._cache.clear()

    def _table(self, kind: str) -> _Table:
        if kind not in self._cache:
            self._cache[kind] = table = self._collect(kind)
            for message in [*table.shadowed.values(), *table.clashes.values()]:
                self._warn(message)
            for f in table.failures:
                self._warn(f"nnumba plugin {f.plugin!r} (from {f.distribution}): "
                           f"{f.error}; skipped")
        return self._cache[kind]

    def _warn(self, message: str):
        if message not in self._warned:  # once, though tables are rebuilt
            self._warned.add(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _collect(self, kind: str) -> _Table:
        table = _Table()
        claims: dict[str, list[Entry]] = {}
        for impl in getattr(self.pm.hook, KINDS[kind]).get_hookimpls():  # registration order
            dist = self._dists.get(impl.plugin_name, "?")
            provided, problems = _call(kind, impl)
            table.failures += [PluginFailure(impl.plugin_name, dist, p) for p in problems]
            for name, obj in provided.items():
                entry = Entry(kind, name, obj, impl.plugin_name, dist)
                table.qualified[entry.qualified] = entry
                claims.setdefault(name, []).append(entry)
        for name, entries in claims.items():
            builtins = [e for e in entries if e.builtin]
            if len(entries) == 1 or len(builtins) == 1:
                winner = entries[0] if len(entries) == 1 else builtins[0]
                table.names[name] = winner
                for e in entries:
                    if e is not winner:
                        table.shadowed[e.qualified] = (
                            f"{kind} {name!r} of plugin {e.plugin!r} ({e.distribution}) clashes "
                            f"with the built-in {winner.plugin!r}, which wins; the plugin's is "
                            f"{e.qualified!r}")
                continue
            who = " and ".join(f"plugin {e.plugin!r} ({e.distribution})" for e in entries)
            table.clashes[name] = (
                f"{kind} {name!r} is registered twice: by {who}; use "
                f"{' or '.join(repr(e.qualified) for e in entries)}")
        return table

    def entries(self, kind: str) -> dict[str, Entry]:
        """{bare name: entry} of the names that find one entry alone."""
        return dict(self._table(kind).names)

    def all_entries(self, kind: str) -> list[tuple[str, Entry]]:
        """(the name that finds it, entry) for every entry, shadowed and ambiguous ones
        under their qualified names, sorted by name."""
        table = self._table(kind)
        rows = [(e.qualified if table.names.get(e.name) is not e else e.name, e)
                for e in table.qualified.values()]
        return sorted(rows, key=lambda row: (row[1].name, row[0]))

    def clashes(self, kind: str) -> dict[str, str]:
        """{name: message} for names that more than one plugin claims (keyed by the
        qualified name where a built-in shadows a plugin's entry)."""
        table = self._table(kind)
        return {**table.clashes, **table.shadowed}

    def get(self, kind: str, name: str):
        return self.entry(kind, name).obj

    def entry(self, kind: str, name: str) -> Entry:
        """The entry ``name`` (bare or PLUGIN:NAME) finds; RegistryError where none do."""
        table = self._table(kind)
        if not isinstance(name, str):
            raise RegistryError(f"a {kind} name is a string, got {name!r:.80}")
        found = table.names.get(name) or table.qualified.get(name)
        if found is not None:
            return found
        if name in table.clashes:
            raise RegistryError(table.clashes[name])
        plugin, _, bare = name.partition(":")
        if plugin and bare and not any(q.startswith(plugin + ":") for q in table.qualified):
            # not "did you mean" another plugin's entry of that name: its arguments differ
            same = sorted(q for q in table.qualified if q.endswith(":" + bare))
            also = f"; {bare!r} is registered as {' and '.join(map(repr, same))}, another " \
                f"{kind} whose arguments may differ" if same else ""
            message = (f"unknown {kind} {name!r}: nothing loaded registers under {plugin!r} "
                       f"(a plugin's entry-point name, or a built-in's module): install the "
                       f"distribution that registers it{also} (`nnumba plugins` lists what "
                       f"is loaded)")
        else:
            message = unknown_name_message(kind, name, [n for n, _ in self.all_entries(kind)])
        failed, notes = sorted({f.plugin for f in self.failures}), []
        if failed:  # the name may be what a failed plugin or hook would have given
            notes.append(f"Plugin {', '.join(map(repr, failed))} failed in part or whole: "
                         f"see nnumba plugins.")
        if not self.autoload:  # an installed plugin may well have given it
            notes.append(f"{AUTOLOAD_OFF[0].upper()}{AUTOLOAD_OFF[1:]}.")
        if notes:
            message = f"{message.rstrip('.')}. {' '.join(notes)}"
        raise RegistryError(message)

    def name_of(self, kind: str, obj) -> str | None:
        """The name that finds ``obj``: its bare name where that finds it, else its
        qualified one; None when no plugin registered it."""
        table = self._table(kind)
        return next((name for names in (table.names, table.qualified)
                     for name, entry in names.items() if entry.obj is obj), None)


def _call(kind: str, impl) -> tuple[dict, list[str]]:
    """({name: thing}, problems) of one plugin's hook: whatever it raises or returns
    wrong costs that plugin only."""
    hook = KINDS[kind]
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout may hold one JSON object
            provided = impl.function()
        if provided is None:
            return {}, [f"{hook} returned None, not a dict {{name: {kind}}}: is its "
                        f"`return` missing?"]
        if not isinstance(provided, Mapping):
            return {}, [f"{hook} returned a {type(provided).__name__}, not a dict "
                        f"{{name: {kind}}}"]
        items = list(provided.items())
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - e.g. an import inside the hook
        return {}, [f"{hook} raised {type(exc).__name__}: {exc}"]
    good, problems = {}, []
    for name, obj in items:
        why = invalid_entry(kind, name, obj, BASES.get(kind))
        if why:
            problems.append(f"{hook}: {kind} {name!r:.60}: {why}")
        else:
            good[name] = obj
    return good, problems


#: kind -> the class its entries must subclass; nnumba.layers and nnumba.losses put
#: theirs here (the registry imports neither: they import the registry's users).
BASES: dict[str, type] = {}


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def register_plugin(plugin, name: str | None = None) -> str:
    """Register a plugin object (a module or any object with hookimpls) now, for tests
    and notebooks (packages use the ``nnumba`` entry-point group); returns its name."""
    return get_registry().register(plugin, name)


def unregister_plugin(name: str):
    """Remove the plugin named ``name`` by :func:`register_plugin`, and all it registered."""
    get_registry().unregister(name)


def own_layers(spec, plugin: str):
    """A plugin's model ``spec`` with every bare layer name that ``plugin`` registers
    itself qualified: its own layer, whatever the built-ins or other plugins claim."""
    mine = {e.name for e in get_registry()._table("layer").qualified.values()
            if e.plugin == plugin}
    if not isinstance(spec, list) or not mine:
        return spec
    return [{**item, "type": f"{plugin}:{item['type']}"} if isinstance(item, dict) and
            isinstance(item.get("type"), str) and item["type"] in mine else item
            for item in spec]


def get_layer(name: str):
    """The layer class registered as ``name`` (or ``PLUGIN:NAME``): a spec's "type"."""
    return get_registry().get("layer", name)


def get_loss(name: str):
    """The loss class registered as ``name``: ``get_loss("MSE")()`` trains with it."""
    return get_registry().get("loss", name)


def get_model(name: str):
    """The NamedModel registered as ``name``: its specs name its plugin's layers qualified."""
    from .models import named
    entry = get_registry().entry("model", name)
    model = named(entry.obj)
    own = functools.wraps(model.build)(lambda **options: own_layers(
        model.build(**options), entry.plugin))
    return replace(model, build=own)


def get_dataset(name: str):
    """The dataset loader registered as ``name`` (``nnumba.data.load_dataset`` runs it)."""
    return get_registry().get("dataset", name)
