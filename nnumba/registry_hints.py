"""What the registry says to someone who got a name wrong: an unknown name, with the
registered names closest to it, the hook functions of a plugin that pluggy
would silently never call (a misspelt name, a missing ``@hookimpl``), entry
points in a group spelt almost as nnumba's, and an entry a hook should not give."""
from __future__ import annotations

import difflib
import importlib.metadata
import re

from . import hookspecs


def plural(kind: str) -> str:
    """English plural of a kind's name, for messages: loss -> losses, layer -> layers."""
    if kind.endswith(("s", "x", "z", "ch", "sh")):
        return kind + "es"
    if kind.endswith("y") and kind[-2:-1] not in "aeiou":
        return kind[:-1] + "ies"
    return kind + "s"


#: the longest name a registry entry may have (the registry refuses longer ones), and
#: so the longest an error message repeats in full
LONGEST_NAME = 100


def unknown_name_message(kind: str, name: str, known, plugins: bool = True) -> str:
    """One line: the name, the known names closest to it, and (``plugins``: a kind that
    plugins register) that a plugin's names need the plugin installed."""
    if not isinstance(name, str):  # None, 3: len() and difflib raised a bare TypeError
        shown, close = f"{name!r:.{LONGEST_NAME}} (a {type(name).__name__}, not a name)", []
    elif len(name) > LONGEST_NAME:  # no registered name is that long: no near match either
        shown, close = f"{name[:LONGEST_NAME]!r}... ({len(name):,} characters)", []
    else:
        by_lower = {k.lower(): k for k in known}
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        if name.lower() in by_lower and by_lower[name.lower()] not in close:
            close.insert(0, by_lower[name.lower()])
        shown = repr(name)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
    where = " One from a plugin needs that plugin installed (`nnumba plugins` lists what " \
        "is loaded)." if plugins else ""
    return (f"unknown {kind} {shown}{hint}{where} Known {plural(kind)}: "
            f"{', '.join(sorted(known)) or '(none)'}.")


def misnamed_hooks(plugin, hook_names) -> list[str]:
    """What pluggy lets pass in silence and nnumba never calls: a function marked
    ``@hookimpl`` whose name is no nnumba hook (a typo), and one named like a hook
    but not marked.  ``hook_names``: the registry's hooks."""
    hooks = sorted(hook_names)
    problems = []
    for attr in dir(plugin):
        if not attr.startswith("nnumba_"):
            continue
        try:
            obj = getattr(plugin, attr)
        except Exception:  # noqa: BLE001 - a property that raises is no hook either
            continue
        marked = getattr(obj, f"{hookspecs.PROJECT}_impl", None) is not None
        if marked and attr not in hooks:
            close = difflib.get_close_matches(attr, hooks, n=1)
            hint = (f"did you mean {close[0]}? " if close else "") + \
                f"the hooks are {', '.join(hooks)}"  # all of them: trainers are none
            problems.append(f"{attr} is not an nnumba hook and is never called ({hint})")
        elif not marked and attr in hooks and callable(obj):
            problems.append(f"{attr} is never called: decorate it with @nnumba.hookimpl")
    return problems


def near_miss_entry_points(group: str) -> list[tuple[str, str, str]]:
    """(entry point, distribution, problem) for each entry point in a group spelt
    almost as ``group``, its first word ("nnumba.plugins", "Nnumba"; not
    "nnumbatools.x"): its plugin would be missing without a word."""
    everything, found = importlib.metadata.entry_points(), []
    for other in sorted(everything.groups):
        if other != group and re.split(r"[^a-z]", other.lower())[0] == group:
            for ep in everything.select(group=other):
                dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"
                found.append((ep.name, dist, f"its entry point is in the group {other!r}, "
                              f"which nnumba does not read; the group is {group!r} ("
                              f"[project.entry-points.{group}] in pyproject.toml)"))
    return found


def invalid_entry(kind: str, name, obj, base) -> str | None:
    """Why ``name: obj`` cannot be a registry entry of ``kind`` (``base``: the class its
    entries subclass, or of whose instances for devices; None: no class), or None."""
    # A line break, an escape or a lone surrogate would split or stop `nnumba plugins`'
    # table, and a name of thousands of characters pad every row of it.
    if not isinstance(name, str) or not name.strip() or ":" in name or (
            not name.isprintable() or len(name) > LONGEST_NAME):
        return (f"a name must be a non-empty string without ':', of printable characters "
                f"(no line breaks, escapes or lone surrogates), at most {LONGEST_NAME} long")
    if kind == "device" and base is not None:  # a device is an instance, not a class
        if not isinstance(obj, base):
            return f"not an instance of a nnumba.device.Device subclass ({obj!r:.60})"
        if obj.name != name:  # to() takes the key, a layer's devices entry the name
            return f"its name is {obj.name!r:.60}: register it under its name"
        if name != name.strip().lower():  # what get_device looks up: found by no name
            return f"a device name is lower case without spaces at its ends, as " \
                   f"model.to() looks it up: {name.strip().lower()!r:.60}"
    elif base is not None:
        if not (isinstance(obj, type) and issubclass(obj, base)):
            return f"not a subclass of nnumba.{base.__name__} ({obj!r:.60})"
    elif kind in ("model", "dataset") and not callable(obj):
        return f"not callable ({obj!r:.60})"
    return None
