"""The ``nnumba`` command: one sub-command per module in :mod:`nnumba.commands`."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each module has add_parser(subparsers) that sets a ``run(args) -> int`` default.
COMMANDS = ("train", "plugins", "info", "experiment", "summary", "classify")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnumba", description="A from-scratch neural-network engine on Numba kernels.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"nnumba.commands.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .errors import NnumbaError
    try:
        return args.run(args) or 0
    except (NnumbaError, FileNotFoundError, ValueError, OSError) as exc:
        # Users get the message, not a traceback, for what they can fix.
        print(f"nnumba {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
