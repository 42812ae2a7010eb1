"""``nnumba plugins``: every registered layer, loss, model and data set, and who provides it."""
import json


def add_parser(sub):
    p = sub.add_parser("plugins", help="list registered layers, losses, models and data sets")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args):
    from ..registry import KINDS, get_registry
    registry = get_registry()
    report = {kind: [{"name": e.name, "plugin": e.plugin, "distribution": e.distribution}
                     for e in sorted(registry.entries(kind).values(), key=lambda e: e.name)]
              for kind in KINDS}
    report["clashes"] = [msg for kind in KINDS for msg in registry.clashes(kind).values()]
    report["failed"] = [{"plugin": f.plugin, "distribution": f.distribution, "error": f.error}
                        for f in registry.failures]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for kind in KINDS:
        if not report[kind]:
            continue
        print(f"{'losses' if kind == 'loss' else kind + 's'}:")
        width = max(len(e["name"]) for e in report[kind])
        for e in report[kind]:
            print(f"  {e['name']:<{width}}  {e['plugin']}  [{e['distribution']}]")
    for msg in report["clashes"]:
        print(f"clash: {msg}")
    for f in report["failed"]:
        print(f"failed to load: plugin {f['plugin']} ({f['distribution']}): {f['error']}")
    return 0
