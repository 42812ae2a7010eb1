"""``nnumba plugins``: every registered layer, loss, model and data set, who provides
it, and what it is (a model's ``description``, else its docstring's first sentence).

A name a built-in shadows, or two third-party plugins claim, is listed under the
qualified name ``PLUGIN:NAME`` that reaches it (see :mod:`nnumba.registry`)."""
import json

from ..layers.validation import printable


def add_parser(sub):
    p = sub.add_parser("plugins", help="list registered layers, losses, models and data sets",
                       description="List what each plugin registers. Built-ins win a name "
                                   "clash; PLUGIN:NAME reaches any plugin's entry.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


COLUMN, SUMMARY, LONGEST = 40, 100, 500  # name and plugin columns, summaries, any field


def _text(text, width=LONGEST) -> str:
    """A plugin's text for the terminal: its escapes and lone surrogates written out
    (raw, one would drive the terminal or end the listing with an encoding error), and
    cut to ``width``."""
    text = printable(str(text))
    return text if len(text) <= width else text[:width - 3] + "..."


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
        rows = [{key: _text(value, SUMMARY if key == "summary" else LONGEST)
                 for key, value in e.items()} for e in report[kind]]
        width = min(max(len(e["name"]) for e in rows), COLUMN)  # a longer one overflows
        plugin_width = min(max(len(e["plugin"]) for e in rows), COLUMN)
        for e in rows:
            note = f"  ({e['note']})" if e["note"] else ""
            print(f"  {e['name']:<{width}}  {e['plugin']:<{plugin_width}}  "
                  f"[{e['distribution']}]{note}")
            if e["summary"]:
                print(f"  {'':<{width}}  {e['summary']}")
    for msg in report["clashes"]:
        print(f"clash: {_text(msg)}")
    for f in report["failed"]:
        print(f"failed: plugin {_text(f['plugin'])} ({_text(f['distribution'])}): "
              f"{_text(f['error'])}")
    if report["clashes"]:
        print("Built-ins win a clash; PLUGIN:NAME reaches any plugin's entry.")
    return 0
