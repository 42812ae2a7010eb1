"""The ``nnumba`` command: one sub-command per module in :mod:`nnumba.commands`.

Whatever goes wrong ends in one line on stderr and a non-zero exit: 2 for what
the user can fix (nnumba's own errors, files, values), 1 for anything else,
which is a bug. ``--debug``, anywhere on the line, shows the traceback instead.
A reader that stops early (``nnumba train | head -1``) ends the command quietly
with 141, the status of a Unix tool killed by SIGPIPE (128 + 13), so that a
``set -o pipefail`` script sees what it sees of ``cat``.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import select
import signal
import sys
import warnings

# Each module has add_parser(subparsers) that sets a ``run(args) -> int`` default.
COMMANDS = ("train", "plugins", "info", "experiment", "summary", "classify")
DEBUG_FLAG = "--debug"
BROKEN_PIPE_STATUS = 128 + 13  # as a shell reports a tool killed by SIGPIPE


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


def _parse(argv):
    """The parsed arguments; an option the command does not know is the error of the
    innermost command given (its usage and "nnumba experiment run: error:"), one before
    the command the top-level parser's."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, unknown = parser.parse_known_args(argv)  # --help: SystemExit
    if not unknown:
        return args
    owner, at = parser, argv.index(args.command) if args.command in argv else 0
    if not set(unknown) & set(argv[:at]):
        while (chosen := _chosen(owner, args)) is not None:
            owner = chosen
    owner.error(f"unrecognized arguments: {' '.join(unknown)}")


def _chosen(parser, args):
    """The subcommand's parser that ``args`` chose under ``parser``, or None."""
    for action in parser._actions:  # (argparse keeps its subcommands only there)
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(getattr(args, action.dest, None))
    return None


def naming(exc: Exception, source: str, more: str = "") -> Exception:
    """``exc`` again, its message on one line after ``source`` (the file it is about)
    and before ``more``: of its own type where that type takes a message alone, else
    a ValueError."""
    message = f"{source}: {' '.join(str(exc).split())}"
    message = message.rstrip(".") + more if more else message
    try:
        return type(exc)(message)
    except Exception:  # noqa: BLE001 - a type with a constructor of its own
        return ValueError(message)


_DEFAULT_FORMAT = warnings.formatwarning


def _one_line_warning(message, category, filename, lineno, line=None):
    # The first line: numba's warning for an environment variable it cannot parse
    # ends in the text of a whole traceback.
    return f"nnumba: warning: {_first_line(str(message))}\n"


def quiet_import_warnings():
    """Warnings as one line from here on (main restores the default when it ends):
    called by the package, before numba's import, when this process is the command;
    numba warns there about the environment (NUMBA_NUM_THREADS=abc, NUMBA_OPT=x)."""
    if DEBUG_FLAG not in sys.argv:
        warnings.formatwarning = _one_line_warning


#: set by quiet_interrupt: this process is the ``nnumba`` command (not a host program)
_as_command = False


def quiet_interrupt():
    """Ctrl-C while the command loads (numba, numpy: before main can catch it) ends it
    with 130 and one line, not a traceback from inside an import; main puts Python's
    own handler back. Where Ctrl-C is ignored (a job a script started with &: the
    shell's Ctrl-C is the script's), it stays ignored, as Python leaves it."""
    global _as_command
    _as_command = True
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _interrupted)


def _interrupted(*_):
    sys.stderr.write("interrupted\n")
    os._exit(130)  # before main, or after it: nothing left to clean up but exit handlers


def main(argv=None) -> int:
    command = signal.getsignal(signal.SIGINT) is _interrupted  # ours: not ignored (a & job)
    # SIGTERM (timeout, Slurm, docker stop) as Ctrl-C: a training keeps its weights.  Only
    # in the command's own process (a background job's too), where nobody else chose
    # what the signal does.
    # Not under mpiexec: a rank blocked in MPI_Init or a collective never comes back to
    # Python to run a handler, and the job outlived timeout's SIGTERM.
    from .distributed.launch import launched_under_mpi
    mpi = launched_under_mpi()
    term = _as_command and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and not mpi
    if command:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if term:
        from .errors import raise_terminated
        signal.signal(signal.SIGTERM, raise_terminated)
    argv = list(sys.argv[1:] if argv is None else argv)
    if sys.stderr is None:  # closed (2>&-): notes and progress go nowhere, not to stdout
        sys.stderr = open(os.devnull, "w")
    # Taken out before parsing, so that it works after the command's own options too.
    debug = DEBUG_FLAG in argv
    if debug:
        argv.remove(DEBUG_FLAG)
    shown = warnings.formatwarning  # restored at the end, but not quiet_import_warnings'
    shown = _DEFAULT_FORMAT if shown is _one_line_warning else shown
    if not debug:  # plugins' warnings (a clash, a failing hook): one line, not file:line + code
        warnings.formatwarning = _one_line_warning
    # A character stdout cannot show (cp1252 on Windows, ascii) comes out as \uXXXX: it
    # ended the command mid-table ("≈" in summary's total, a label in classify's).
    stdout, handled = sys.stdout, getattr(sys.stdout, "errors", None)
    with contextlib.suppress(AttributeError, ValueError, OSError):
        stdout.reconfigure(errors="backslashreplace")
    try:
        status, asked = 0, next((a for a in argv if not a.startswith("-")), None)  # its name
        try:
            try:
                args = _parse(argv)
                status = _run(args, debug)
            except SystemExit as stop:  # argparse's error (2), or --help (0)
                status = stop.code
                raise
            finally:
                if mpi and status:
                    _abort_mpi_job(status, asked)
            return status
        finally:
            if sys.stdout is not None:  # None where stdout was closed (>&-)
                sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
    except KeyboardInterrupt as stop:  # while the parser is built (plugins load) or the command runs
        from .errors import stop_status
        word, status = stop_status(stop)
        print(word, file=sys.stderr)
        return status
    except BrokenPipeError:
        if not _closed_outputs():
            raise  # a pipe of the command's own (a plugin's, a download's): not the reader's
        return _end_quietly()
    finally:
        warnings.formatwarning = shown
        with contextlib.suppress(AttributeError, ValueError, OSError, TypeError):
            stdout.reconfigure(errors=handled)  # as a host program had it
        if command:  # Ctrl-C as the interpreter shuts down: one line, not a traceback
            signal.signal(signal.SIGINT, _interrupted)
        if term:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _abort_mpi_job(status, command):
    """A rank of several that failed (a bad option on one rank's command line, its
    own file missing) ends the job: the others would wait for it for ever, in MPI_Init
    or in a collective.  Only ``train`` starts MPI: a rank of another command waits for
    nobody, and nobody for it, while starting MPI here would wait for ranks that ended.
    Where MPI is gone or missing there is nothing to end."""
    from .distributed.launch import import_mpi
    from .errors import NnumbaError
    started = sys.modules.get("mpi4py.MPI")
    if command != "train" and not (started and started.Is_initialized()):
        return
    try:
        mpi = import_mpi()  # (its first import starts MPI: the others' MPI_Init returns)
        if mpi.Is_finalized():
            return
    except NnumbaError:
        return
    from .distributed.comm import Communicator
    Communicator(mpi.COMM_WORLD).abort(f"nnumba: this rank failed (status {status}): "
                                       f"aborting the MPI job so that no rank waits for it",
                                       status if isinstance(status, int) else 1)


def _closed_outputs() -> list:
    """The file descriptors of stdout and stderr whose reader has gone (Linux, macOS:
    poll says POLLERR for a pipe without reader)."""
    closed = []
    for stream in (sys.stdout, sys.stderr):
        try:
            poller = select.poll()
            poller.register(stream.fileno(), select.POLLOUT)
            if any(event & select.POLLERR for _, event in poller.poll(0)):
                closed.append(stream.fileno())
        except (AttributeError, OSError, ValueError):  # no poll, no real file descriptor
            continue
    return closed


def _end_quietly() -> int:
    """Stop writing where nobody reads, as Unix tools do: no message, status 141."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in _closed_outputs():
        os.dup2(devnull, fd)  # Python's final flush at exit would fail again, loudly
    os.close(devnull)
    return BROKEN_PIPE_STATUS


def _run(args, debug: bool) -> int:
    from .errors import ContractError, NnumbaError, caused_by_interrupt

    def error(text: str, status: int = 2) -> int:
        from .layers.validation import printable  # (a class or file name's escapes)
        if len(text) > 4000:  # a name or value pasted in whole: its ends say enough
            text = f"{text[:2500]} [... {len(text) - 3500:,} characters ...] {text[-1000:]}"
        # Lines kept (a recipe to copy), but indented: none can pass for an error line
        text = printable(text, lines=True).replace("\n", "\n  ")
        print(f"nnumba {args.command}: error: {text}", file=sys.stderr)
        return status
    try:
        return args.run(args) or 0
    except Exception as exc:  # (KeyboardInterrupt: main says "interrupted")
        if debug or (isinstance(exc, BrokenPipeError) and _closed_outputs()):
            raise  # main ends quietly where the reader of stdout has gone
        stop = caused_by_interrupt(exc)
        if stop is not None:  # Ctrl-C that Python wrapped: no bug to report
            raise stop from exc
        message = str(exc)
        plugin = getattr(exc, "plugin", None) if isinstance(exc, NnumbaError) else None
        if plugin is not None:  # a plugin's code raised (a data set loader)
            where = _raised_in_plugin(exc.__cause__) if exc.__cause__ is not None else None
            return error(f"{message} ({f'at {where[1]}; ' if where else ''}a bug in plugin "
                         f"{plugin!r}: rerun with {DEBUG_FLAG} for the traceback, and report "
                         f"it to the plugin's authors)", 1)
        kernel = _raised_in_kernel_set(exc)
        if kernel is not None:  # a plugin device's kernel: its bug, whatever it raised
            return error(f"device {kernel[1]!r}: its kernel raised {type(exc).__name__}: "
                         f"{message} (at {kernel[2]}; a bug in plugin {kernel[0]!r}: rerun with "
                         f"{DEBUG_FLAG} for the traceback, and report it to the plugin's "
                         f"authors)", 1)
        if isinstance(exc, ContractError):  # code breaking nnumba's contract: no user's fix
            return error(f"{message} (a bug in the plugin that registered it: rerun with "
                         f"{DEBUG_FLAG} for the traceback, and report it to its authors)", 1)
        if isinstance(exc, (NnumbaError, OSError, ValueError)):
            return error(message)  # users get the message, not a traceback, for what they can fix
        if isinstance(exc, MemoryError):
            return error(f"out of memory{': ' + message if message else ''}")
        from numba import config
        if config.DISABLE_JIT:
            # numba's pure-Python mode cannot run nnumba's BLAS intrinsics (_cblas_gemm).
            return error(f"nnumba needs numba's JIT: NUMBA_DISABLE_JIT=1 is not supported, unset "
                         f"it ({type(exc).__name__}: {_first_line(message)})")
        plugin = _raised_in_plugin(exc)
        if plugin is not None:  # the plugin's bug, not nnumba's
            return error(f"plugin {plugin[0]!r} raised {type(exc).__name__}: {message} (at "
                         f"{plugin[1]}; rerun with {DEBUG_FLAG} for the traceback, and "
                         f"report it to the plugin's authors)", 1)
        return error(f"{type(exc).__name__}: {message} (unexpected: rerun with {DEBUG_FLAG} "
                     f"for the traceback, and please report it)", 1)


def _raised_in_plugin(exc) -> tuple[str, str] | None:
    """(plugin name, file:line) of the innermost traceback frame in an installed
    plugin's code, or None."""
    from .registry import get_registry
    found, tb = None, exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        name = get_registry().plugin_of(filename)
        if name is not None:
            found = (name, f"{filename}:{tb.tb_lineno}")
        tb = tb.tb_next
    return found


def _raised_in_kernel_set(exc) -> tuple[str, str, str] | None:
    """(plugin, device, file:line) where a kernel of a plugin device's kernel set raised
    ``exc`` (the layers check what they pass it), or None."""
    from .registry import get_registry
    sets = {e.obj.kernel_set: (e.plugin, name)
            for name, e in get_registry().all_entries("device")
            if not e.builtin and isinstance(e.obj.kernel_set, str)}  # (else unhashable)
    found, tb = None, exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__")
        if module in sets:
            found = (*sets[module], f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}")
        tb = tb.tb_next
    return found


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


if __name__ == "__main__":
    sys.exit(main())
