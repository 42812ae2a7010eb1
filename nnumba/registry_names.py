"""Layer names that find a layer's class again, whatever plugins installed since
claim: what a model's spec and a saved file's spec are written and read with."""
from __future__ import annotations

import importlib.metadata

from .errors import RegistryError
from .registry import get_registry


def _finds(registry, name, cls) -> bool:
    """Whether the layer name ``name`` finds ``cls``."""
    try:
        return registry.get("layer", name) is cls
    except RegistryError:
        return False


def layer_spec(layer) -> dict:
    """``layer.spec()`` with a "type" that finds its class again: its qualified name
    ``PLUGIN:NAME`` where the bare name finds another class (a built-in, another
    plugin's) or none, and the name it is registered under where that differs."""
    registry, item = get_registry(), layer.spec()
    if not _finds(registry, item["type"], type(layer)):
        item["type"] = registry.name_of("layer", type(layer)) or item["type"]
    return item


def recorded_layers(spec: list, distributions: dict) -> list:
    """A saved ``spec`` with each layer name that ``distributions`` ({name: "DIST
    VERSION"}, recorded by save) ties to a plugin qualified with that distribution's
    plugin (any version) where the bare name now finds another layer, or several."""
    table, dist_name = get_registry()._table("layer"), lambda d: str(d).rsplit(" ", 1)[0]
    out = []
    for item in spec:
        dist = distributions.get(item["type"]) if isinstance(item, dict) and \
            isinstance(item.get("type"), str) else None
        owners = [e for e in table.qualified.values() if dist is not None and
                  e.name == item["type"] and dist_name(e.distribution) == dist_name(dist)]
        if len(owners) == 1 and table.names.get(item["type"]) is not owners[0]:
            item = {**item, "type": owners[0].qualified}
        elif dist is not None and not owners:
            _check_stand_in(item["type"], dist_name(dist), table.names.get(item["type"]))
        out.append(item)
    return out


def _check_stand_in(name: str, dist: str, entry):
    """RegistryError where the layer ``name`` of a file, recorded as distribution
    ``dist``'s (not loaded now), would be built from another plugin's class of the same
    name: it may compute something else.  ``dist``'s own code registered at run time
    (its nnumba entry point's package) is the same layer."""
    if entry is None or _package_of(dist) == entry.obj.__module__.split(".")[0]:
        return  # none: the rebuild says the layer is missing, and what to install
    raise RegistryError(f"the file's layer {name!r} came from {dist}, which does not give "
                        f"it now; {name!r} names the layer of plugin {entry.plugin!r} "
                        f"({entry.distribution}), which may compute something else: "
                        f"install {dist} with that layer to load the file")


def _package_of(dist: str):
    """The top-level package of installed distribution ``dist``'s nnumba entry point,
    or None."""
    try:
        points = importlib.metadata.distribution(dist).entry_points
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    return next((p.value.split(":")[0].split(".")[0] for p in points if p.group == "nnumba"),
                None)


def came_from(distributions) -> str:
    """"; its layers came from DIST VERSION (Layer), ..." for a saved file's record of
    its plugin layers, to say what to install ("" where it records none)."""
    if not isinstance(distributions, dict) or not distributions:
        return ""
    return "; its layers came from " + ", ".join(
        f"{d} ({t})" for t, d in sorted(distributions.items(), key=str))[:500]


def unfound(model, spec: list) -> dict:
    """{layer index: "module.qualname"} of ``model``'s layers whose ``spec`` item finds
    another class or none: an unregistered class (a subclass keeping a built-in's
    type_name would come back as the built-in)."""
    registry = get_registry()
    return {str(i): f"{type(layer).__module__}.{type(layer).__qualname__}"
            for i, (item, layer) in enumerate(zip(spec, model.layers))
            if not _finds(registry, item["type"], type(layer))}
