"""``nnumba experiment``: list the lecture's experiments, or run them (tables and figures)."""
from __future__ import annotations

import json
import os
import sys
import time

from ..errors import caused_by_interrupt
from ..layers.validation import printable
from ..registry import get_registry


def add_parser(sub):
    p = sub.add_parser("experiment", help="the lecture's experiments: list them, run one",
                       description="Reproduce the lecture's experiments: each prints its "
                                   "table and, with --out, writes its figures as PNG files.")
    commands = p.add_subparsers(dest="action", metavar="ACTION")
    commands.required = True
    listing = commands.add_parser("list", help="list the experiments")
    listing.add_argument("--json", action="store_true", help="print one JSON list")
    listing.set_defaults(run=run_list)
    running = commands.add_parser("run", help="run experiments by name ('all' for every one)",
                                  description="Run experiments; `run all --out DIR` also "
                                              "writes DIR/index.html and DIR/index.md, one "
                                              "page with every slide's claim, result and "
                                              "figure.")
    running.add_argument("names", nargs="+", metavar="NAME",
                         help="an experiment from `nnumba experiment list`, or all")
    running.add_argument("--out", help="folder to write the figures (PNG) into; "
                                       "without it, only the tables print")
    running.add_argument("--data-dir", help="folder holding the full MNIST files, for the "
                                            "experiments that use it (perceptron-mnist, "
                                            "cnn-mnist)")
    running.add_argument("--lecture", action="store_true",
                         help="cnn-mnist: the lecture's listing exactly (plain SGD, lr 0.01) "
                              "instead of the faster default settings")
    running.add_argument("--fast", action="store_true",
                         help="smaller sizes (seconds; what the tests run)")
    running.add_argument("--json", action="store_true",
                         help="print the claims' numbers as one JSON object")
    running.set_defaults(run=run_experiments)


def run_list(args):
    from ..experiments import list_experiments
    layers = get_registry().entries("layer")
    items = [{"name": e.name, "summary": e.summary, "slide": e.slide,
              "features": list(e.features),
              "missing_features": [f for f in e.features if f not in layers],
              "options": list(e.options)} for e in list_experiments()]
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    width = max(len(item["name"]) for item in items)
    for item in items:
        missing = ", ".join(item["missing_features"])
        extra = f"  [needs the nnumba-features plugin: {missing}]" if missing else ""
        print(f"{item['name']:<{width}}  {item['summary']}{extra}")
    return 0


def _check_writable(folder):
    """ValueError, in one line, where figures cannot be written into ``folder`` (made
    where missing)."""
    import shutil
    import tempfile
    made, top = os.path.abspath(folder), None
    while not os.path.lexists(made):  # the highest folder this call makes
        top, made = made, os.path.dirname(made)
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        if top is not None:  # refused: none of the folders made on the way is left
            shutil.rmtree(top, ignore_errors=True)
        raise ValueError(f"--out {folder}: cannot write the figures there "
                         f"({exc.strerror or exc})") from None


def _check_pages(folder):
    """ValueError where the report's index.html or index.md in ``folder`` is a folder or
    a file nnumba's report did not write (a project's own page, with --out .): refused
    before the run, where ``train --save`` refuses a file that is not its own."""
    from ..experiments.report import TITLE
    for name in ("index.html", "index.md"):
        page = os.path.join(folder, name)
        if os.path.isdir(page):
            raise ValueError(f"--out {folder}: {name} there is a folder; the report is "
                             f"written to that name")
        if os.path.lexists(page):
            try:
                with open(page, "rb") as f:
                    ours = TITLE.encode() in f.read(4096)
            except OSError:
                ours = False
            if not ours:
                raise ValueError(f"--out {folder}: {name} there exists and is not a report "
                                 f"nnumba wrote; refusing to replace it (move it, or choose "
                                 f"another folder)")


def run_experiments(args):
    from ..experiments import get_experiment, list_experiments
    from ..experiments.common import plugin_hint
    from ..experiments.figures import check_figure_path, figure_class
    from ..experiments.report import Entry, command_for, write_report
    if args.out is not None and not args.out.strip():  # else the figures land in the cwd
        raise ValueError(f"--out needs a folder name, got {args.out!r}")
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out}: names a file, not a folder for the figures")
    if "all" in args.names and len(args.names) > 1:
        raise ValueError(f"'all' runs alone: give 'all' or experiment names, got "
                         f"{' '.join(args.names)}")
    every = args.names == ["all"]
    layers = get_registry().entries("layer")
    # Unknown names fail here, before anything runs; a name given twice runs once.
    chosen = list_experiments() if every else [get_experiment(n) for n in dict.fromkeys(args.names)]
    if args.out and figure_class() is not None:  # the figures: refused now, not after a
        for exp in chosen:                         # run of minutes
            check_figure_path(os.path.join(args.out, f"{exp.name}.png"))
    if args.out:  # now, not after every experiment has run; the folder made last
        if every:
            _check_pages(args.out)
        _check_writable(args.out)
    given = {"data_dir": args.data_dir, "lecture": args.lecture or None}  # None: not given
    numbers, failures, skipped, entries = {}, [], [], []
    out = sys.stderr if args.json else sys.stdout  # with --json, stdout holds only JSON
    for exp in chosen:
        options = {k: v for k, v in given.items() if v is not None and k in exp.options}
        if len(chosen) == 1:
            for unused in sorted(k for k, v in given.items() if v is not None and k not in options):
                print(f"note: {exp.name} does not use --{unused.replace('_', '-')}", file=out)
        command = command_for(exp.name, args.out or "DIR", args.fast, **options)
        missing = [f for f in exp.features if f not in layers]
        if every and missing:  # an optional plugin is absent: skipped, as pytest would
            reason = f"needs {', '.join(missing)}: {plugin_hint()}"
            skipped.append(exp.name)
            entries.append(Entry(exp, None, 0.0, command=command, skipped=reason))
            print(f"== {exp.name}: skipped: {reason}\n", file=out)
            continue
        start = time.perf_counter()
        try:
            result = exp.run(out_dir=args.out, fast=args.fast, **options)
        except Exception as exc:  # noqa: BLE001 - with 'all', one failure must not stop the rest
            if len(chosen) == 1:
                raise
            stop = caused_by_interrupt(exc)
            if stop is not None:  # Ctrl-C that Python wrapped stops the run too
                raise stop from exc
            failures.append(exp.name)
            error = f"{type(exc).__name__}: {exc}"
            entries.append(Entry(exp, None, time.perf_counter() - start, error, command))
            print(f"== {exp.name}: failed: {error}\n", file=out)
            continue
        seconds = time.perf_counter() - start
        entries.append(Entry(exp, result, seconds, command=command))
        print(printable(f"{result}\n({seconds:.1f}s)\n", lines=True), file=out, flush=True)
        numbers[exp.name] = result.numbers
    if every and args.out:
        run_command = command_for("all", args.out, args.fast,
                                  **{k: v for k, v in given.items() if v})
        page, markdown = write_report(args.out, entries, run_command)
        print(printable(f"report: {page} (and {markdown.name})"), file=out)
    if args.json:
        print(json.dumps(numbers, default=_jsonable))
    if skipped:
        print(f"skipped (an optional plugin is not installed): {', '.join(skipped)}",
              file=sys.stderr)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def _jsonable(value):
    """numpy scalars and arrays in the numbers, as plain JSON values."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
