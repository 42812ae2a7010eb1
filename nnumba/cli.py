"""The ``nnumba`` command: one sub-command per module in :mod:`nnumba.commands`.

Whatever goes wrong ends in one line on stderr and a non-zero exit: 2 for what
the user can fix (nnumba's own errors, files, values), 1 for anything else,
which is a bug. ``--debug``, anywhere on the line, shows the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

# Each module has add_parser(subparsers) that sets a ``run(args) -> int`` default.
COMMANDS = ("train", "plugins", "info", "experiment", "summary", "classify")
DEBUG_FLAG = "--debug"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnumba", description="A from-scratch neural-network engine on Numba kernels.")
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="show the traceback of an error (also after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"nnumba.commands.{name}").add_parser(sub)
    return parser


def naming(exc: Exception, source: str) -> Exception:
    """``exc`` again, its message on one line after ``source`` (the file it is about):
    of its own type where that type takes a message alone, else a ValueError."""
    message = f"{source}: {' '.join(str(exc).split())}"
    try:
        return type(exc)(message)
    except Exception:  # noqa: BLE001 - a type with a constructor of its own
        return ValueError(message)


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"nnumba: warning: {message}\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Taken out before parsing, so that it works after the command's own options too.
    debug = DEBUG_FLAG in argv
    if debug:
        argv.remove(DEBUG_FLAG)
    shown = warnings.formatwarning
    if not debug:  # plugins' warnings (a clash, a failing hook): one line, not file:line + code
        warnings.formatwarning = _one_line_warning
    try:
        args = build_parser().parse_args(argv)
        return _run(args, debug)
    finally:
        warnings.formatwarning = shown


def _run(args, debug: bool) -> int:
    from .errors import NnumbaError
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        message = str(exc)
        if isinstance(exc, (NnumbaError, OSError, ValueError)):
            # Users get the message, not a traceback, for what they can fix.
            print(f"nnumba {args.command}: error: {message}", file=sys.stderr)
            return 2
        if isinstance(exc, MemoryError):
            print(f"nnumba {args.command}: error: out of memory{': ' + message if message else ''}",
                  file=sys.stderr)
            return 2
        print(f"nnumba {args.command}: error: {type(exc).__name__}: {message} (unexpected: "
              f"rerun with {DEBUG_FLAG} for the traceback, and please report it)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
