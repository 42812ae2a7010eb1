"""``nnumba experiment``: list the lecture's experiments, or run them (tables and figures)."""
from __future__ import annotations

import json
import sys
import time


def add_parser(sub):
    p = sub.add_parser("experiment", help="the lecture's experiments: list them, run one",
                       description="Reproduce the lecture's experiments: each prints its "
                                   "table and, with --out, writes its figures as PNG files.")
    commands = p.add_subparsers(dest="action", metavar="ACTION")
    commands.required = True
    listing = commands.add_parser("list", help="list the experiments")
    listing.add_argument("--json", action="store_true", help="print one JSON list")
    listing.set_defaults(run=run_list)
    running = commands.add_parser("run", help="run experiments by name ('all' for every one)")
    running.add_argument("names", nargs="+", metavar="NAME",
                         help="an experiment from `nnumba experiment list`, or all")
    running.add_argument("--out", help="folder to write the figures (PNG) into; "
                                       "without it, only the tables print")
    running.add_argument("--data-dir", help="folder holding the full MNIST files, for the "
                                            "experiments that use it (perceptron-mnist)")
    running.add_argument("--fast", action="store_true",
                         help="smaller sizes (seconds; what the tests run)")
    running.add_argument("--json", action="store_true",
                         help="print the claims' numbers as one JSON object")
    running.set_defaults(run=run_experiments)


def run_list(args):
    from ..experiments import list_experiments
    from ..registry import get_registry
    layers = get_registry().entries("layer")
    items = [{"name": e.name, "summary": e.summary, "features": list(e.features),
              "missing_features": [f for f in e.features if f not in layers],
              "options": list(e.options)} for e in list_experiments()]
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    width = max(len(item["name"]) for item in items)
    for item in items:
        extra = ""
        if item["missing_features"]:
            extra = f"  [needs the nnumba-features plugin: {', '.join(item['missing_features'])}]"
        print(f"{item['name']:<{width}}  {item['summary']}{extra}")
    return 0


def run_experiments(args):
    from ..experiments import get_experiment, list_experiments
    chosen = (list_experiments() if args.names == ["all"]
              else [get_experiment(name) for name in args.names])  # unknown names fail here
    numbers, failures = {}, []
    out = sys.stderr if args.json else sys.stdout  # with --json, stdout holds only JSON
    for exp in chosen:
        options = {"data_dir": args.data_dir} if args.data_dir and "data_dir" in exp.options else {}
        if args.data_dir and not options and len(chosen) == 1:
            print(f"note: {exp.name} does not use --data-dir", file=out)
        start = time.perf_counter()
        try:
            result = exp.run(out_dir=args.out, fast=args.fast, **options)
        except Exception as exc:  # noqa: BLE001 - with 'all', one failure must not stop the rest
            if len(chosen) == 1:
                raise
            failures.append(exp.name)
            print(f"== {exp.name}: failed: {type(exc).__name__}: {exc}\n", file=out)
            continue
        print(f"{result}\n({time.perf_counter() - start:.1f}s)\n", file=out, flush=True)
        numbers[exp.name] = result.numbers
    if args.json:
        print(json.dumps(numbers, default=_jsonable))
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def _jsonable(value):
    """numpy scalars and arrays in the numbers, as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
