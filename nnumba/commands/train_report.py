"""What ``nnumba train`` prints as it goes and at its end, and what it saves: the
epoch lines, the final line or JSON object, and the weights (also on Ctrl-C)."""
from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time

from ..errors import Terminated, raise_terminated, stop_status
from ..layers.validation import printable


@contextlib.contextmanager
def deferred_interrupt():
    """Ctrl-C (and SIGTERM, where ``nnumba``'s own process handles it) waits for the end
    of the block, then raises KeyboardInterrupt (or Terminated): a save it cut short would
    lose the run (the main thread only: signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    # SIGTERM too where the command handles it (cli.main), not a host program's handler
    signals = [signal.SIGINT] + [signal.SIGTERM] * (signal.getsignal(signal.SIGTERM) is
                                                    raise_terminated)
    previous = {sig: signal.signal(sig, lambda signum, _: caught.append(signum))
                for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt if caught[0] == signal.SIGINT else Terminated(caught[0])


def interrupted(args, trainer, trained, info, stop, start) -> int:
    """Ctrl-C (or SIGTERM: ``stop``) during training: nothing trained is lost where
    --save asks for the weights; they are those of the last complete update
    (``trainer``: a Trainer, or the perceptron's result so far)."""
    word, status = stop_status(stop)
    perceptron = isinstance(trainer.history, list)
    before = 0 if perceptron else trainer.epochs_before  # (a resumed run's count goes on)
    epochs = before + (trainer.epochs if perceptron else len(trainer.history.epochs))
    where = (f"{word} in epoch {epochs + 1}/{before + args.epochs}, after "
             f"{trainer.updates} update{'s' * (trainer.updates != 1)}")
    path = None
    if trainer.updates == 0:
        print(f"{where}: nothing trained{', nothing saved' if args.save else ''}",
              file=sys.stderr)
    elif args.save:
        from .. import io
        with deferred_interrupt():  # a second Ctrl-C: after the save
            path = io.save(trained(), args.save, **info)
            more = "" if perceptron else f" (--model {path} trains on from them, " \
                f"from the start of an epoch)"
            print(printable(f"{where}: weights saved to {path}{more}"), file=sys.stderr)
    else:
        print(f"{where} (--save FILE keeps the weights trained so far)", file=sys.stderr)
    if args.json:  # a script reading stdout gets the epochs run, not nothing
        history = list(trainer.history if perceptron else trainer.history.epochs)
        print(json.dumps({"interrupted": True, "epochs": epochs, "updates": trainer.updates,
                          **_last_epoch(history), "seconds": time.perf_counter() - start,
                          "history": history, "saved": None if path is None else str(path)}))
    return status


def _last_epoch(history) -> dict:
    """The keys a finished run's JSON object has (README), from the last complete
    epoch of ``history``; None where no epoch completed."""
    last = history[-1] if history else {}
    error = last.get("test_error")  # the perceptron's rows
    return {"train_loss": last.get("train_loss", last.get("train_error")),
            "test_loss": last.get("test_loss"),
            "test_accuracy": last.get("test_accuracy", None if error is None else 1 - error)}


def sigterm_under_mpi(comm):
    """An MPI rank blocked in a collective never returns to Python, where a SIGTERM
    handler would run: under MPI, SIGTERM (scancel, timeout) ends a rank at once."""
    if comm is not None and signal.getsignal(signal.SIGTERM) is raise_terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def epoch_line(row, epochs):
    acc = row.get("test_accuracy")
    acc_text = f" test_loss {row['test_loss']:.4f} test_accuracy {100 * acc:.2f}%" if acc is not None else ""
    return f"epoch {row['epoch']}/{epochs} train_loss {row['train_loss']:.4f}{acc_text} ({row['seconds']:.1f}s)"


def perceptron_line(row):
    return (f"epoch {row['epoch']} nb_changes {row['nb_changes']} "
            f"train_error {100 * row['train_error']:.2f}% test_error {100 * row['test_error']:.2f}%")


def is_root(args):
    comm = getattr(args, "comm", None)
    return comm is None or comm.is_root


def finish(args, result, summary, trained, info=None) -> int:
    """Complete ``result`` (the MPI figures; the weights of ``trained()`` saved where
    --save asks, with ``info``: save's classes and input_shape) and print it on rank
    0: the JSON object, or ``summary``."""
    if args.comm is not None:
        result["mpi"] = {"ranks": args.comm.size, "threads_per_rank": args.comm.threads,
                         "allreduce_seconds": args.comm.allreduce_seconds}
    if not is_root(args):
        return 0
    with deferred_interrupt():  # Ctrl-C now: after the run is saved and said
        if args.save:
            from .. import io
            result["saved"] = str(io.save(trained(), args.save, **(info or {})))
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{summary} ({result['seconds']:.1f}s)")
            if "saved" in result:
                print(printable(f"weights saved to {result['saved']}"))
    return 0
