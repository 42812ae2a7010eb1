"""``nnumba plugins``: every registered layer, loss, model and data set, who provides
it, and what it is (a model's ``description``, else its docstring's first sentence).

A name a built-in shadows, or two third-party plugins claim, is listed under the
qualified name ``PLUGIN:NAME`` that reaches it (see :mod:`nnumba.registry`)."""
import json


def add_parser(sub):
    p = sub.add_parser("plugins", help="list registered layers, losses, models and data sets",
                       description="List what each plugin registers. Built-ins win a name "
                                   "clash; PLUGIN:NAME reaches any plugin's entry.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def _note(kind, name, entry, ambiguous):
    if name == entry.name:
        return ""
    if entry.name in ambiguous:
        return f"{entry.name!r} is claimed by several plugins"
    return f"{entry.name!r} is the built-in {kind}"


def _summary(kind, obj, width=100) -> str:
    """One line: a model's description, else the first sentence of the docstring."""
    doc = getattr(obj, "__doc__", None)
    if kind == "model":
        from ..models.named import named
        model = named(obj)
        if model.description:
            return str(model.description)
        doc = getattr(model.build, "__doc__", None)
    elif kind == "device":  # an instance: its class says what it is
        doc = type(obj).__doc__
    text = " ".join((doc if isinstance(doc, str) else "").strip().split("\n\n")[0].split())
    end = text.find(". ")
    text = text[:end + 1] if end >= 0 else text
    return text if len(text) <= width else text[:width - 3] + "..."


def run(args):
    from ..registry import KINDS, get_registry, plural
    registry = get_registry()
    report = {}
    for kind in KINDS:
        clashes = registry.clashes(kind)
        report[kind] = [{"name": name, "registered_as": e.name, "plugin": e.plugin,
                         "distribution": e.distribution, "summary": _summary(kind, e.obj),
                         "note": _note(kind, name, e, clashes)}
                        for name, e in registry.all_entries(kind)]
    report["clashes"] = [msg for kind in KINDS for msg in registry.clashes(kind).values()]
    report["failed"] = [{"plugin": f.plugin, "distribution": f.distribution, "error": f.error}
                        for f in registry.failures]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for kind in KINDS:
        if not report[kind]:
            continue
        print(f"{plural(kind)}:")
        width = max(len(e["name"]) for e in report[kind])
        plugin_width = max(len(e["plugin"]) for e in report[kind])
        for e in report[kind]:
            note = f"  ({e['note']})" if e["note"] else ""
            print(f"  {e['name']:<{width}}  {e['plugin']:<{plugin_width}}  "
                  f"[{e['distribution']}]{note}")
            if e["summary"]:
                print(f"  {'':<{width}}  {e['summary']}")
    for msg in report["clashes"]:
        print(f"clash: {msg}")
    for f in report["failed"]:
        print(f"failed: plugin {f['plugin']} ({f['distribution']}): {f['error']}")
    if report["clashes"]:
        print("Built-ins win a clash; PLUGIN:NAME reaches any plugin's entry.")
    return 0
