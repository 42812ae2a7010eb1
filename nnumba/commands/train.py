"""``nnumba train``: train a model on a data set and report its test accuracy."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def add_parser(sub):
    p = sub.add_parser("train", help="train a model (the MLP on the embedded MNIST by default)",
                       description="Train a model. By default: the MLP 784-256-10 with "
                                   "mini-batch SGD on the embedded 4,000/1,000 MNIST split.")
    p.add_argument("--model", default="mlp",
                   help="a registered model name (see `nnumba plugins`) or a JSON spec file")
    p.add_argument("--dataset", default="mnist-5k",
                   help="mnist-5k (embedded, default), mnist, fashion-mnist")
    p.add_argument("--data-dir", help="folder holding the data set's IDX files")
    p.add_argument("--download", action="store_true", help="download the data set if missing")
    p.add_argument("--trainer", default="sgd", choices=("sgd", "gd", "perceptron"))
    p.add_argument("--loss", default="CrossEntropy", help="a registered loss name")
    # None: the model's own train_defaults, else FALLBACK_DEFAULTS.
    p.add_argument("--epochs", type=int, help="default: the model's (MLP 20, CNN 10)")
    p.add_argument("--batch-size", type=int, help="default 100")
    p.add_argument("--lr", type=float, help="learning rate; default: the model's (MLP 0.1)")
    p.add_argument("--momentum", type=float, help="default 0.9")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", default="0,1",
                   help="perceptron only: NEG,POS digits (the lecture's 0 vs 1)")
    p.add_argument("--train-size", type=int, help="use only the first N training samples")
    p.add_argument("--save", help="write the trained weights to this .npz file")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    p.add_argument("--device", default="cpu",
                   help="cpu (default) or cuda: train on an NVIDIA GPU with numba.cuda kernels "
                        "(needs pip install \"nnumba[cuda]\"; an error, never a fallback, "
                        "where CUDA is not available)")
    p.add_argument("--mpi", action="store_true",
                   help="train data-parallel over MPI ranks: `mpiexec -n N nnumba train` "
                        "(automatic under mpiexec with N > 1; needs pip install \"nnumba[mpi]\")")
    p.set_defaults(run=run)


FALLBACK_DEFAULTS = {"epochs": 10, "lr": 0.05, "momentum": 0.9, "batch_size": 100}


def _fill_defaults(args):
    """Options left unset take the model's train_defaults (the perceptron: 100 epochs)."""
    defaults = dict(FALLBACK_DEFAULTS)
    if args.trainer == "perceptron":
        defaults["epochs"] = 100
    elif Path(args.model).suffix != ".json":
        from ..registry import get_model
        defaults.update(get_model(args.model).train_defaults)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def _load_data(args):
    from ..registry import get_dataset
    data = get_dataset(args.dataset)(root=args.data_dir, download=args.download)
    if args.train_size is not None:
        if args.train_size < 1:
            raise ValueError(f"--train-size must be >= 1, got {args.train_size}")
        data = data.subset(train=args.train_size)
    return data


def _say(args, text):
    # With --json, stdout carries only the JSON object; under MPI only rank 0 speaks.
    if _is_root(args):
        print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def _mpi_session(args):
    """A Communicator when launched by mpiexec with several ranks or asked with --mpi;
    None otherwise, and then mpi4py is never imported."""
    from ..distributed.launch import rank_from_env, world_size_from_env
    if not getattr(args, "mpi", False) and world_size_from_env() <= 1:
        return None
    from ..distributed import MPIUnavailableError, setup
    try:
        return setup()
    except MPIUnavailableError:
        if rank_from_env() != 0:
            raise SystemExit(2)  # rank 0 says how to install mpi4py, once
        raise


def run(args):
    start = time.perf_counter()
    args.comm = _mpi_session(args)
    if args.comm is None:
        return _run(args, start)
    from ..distributed import abort_on_error
    with abort_on_error(args.comm):  # one failing rank must not leave the others waiting
        return _run(args, start)


def _check_device(args):
    """Fail fast, before loading data, where the device cannot run this job."""
    from ..device import get_device
    device = get_device(args.device)  # DeviceUnavailableError says why
    if device.name != "cpu":
        if args.trainer == "perceptron":
            raise ValueError(f"--trainer perceptron runs on the CPU only (got --device "
                             f"{args.device}): drop --device, or use --trainer sgd/gd")
        if args.comm is not None:
            raise ValueError(f"MPI training runs on the CPU only (got --device {args.device})")
    return device


def _run(args, start):
    if args.save is not None:  # a path that cannot be written fails now, not after training
        from ..io import check_save_path
        args.save = check_save_path(args.save)
    args.device = _check_device(args).name
    _fill_defaults(args)
    data = _load_data(args)  # every rank loads from disk; each trains on its shares only
    _say(args, f"data: {data.name}, {len(data.x_train)} train / {len(data.x_test)} test "
               f"({data.description})")
    if args.comm is not None:
        _say(args, f"MPI: {args.comm.size} ranks, {args.comm.threads} thread(s) each")
    if args.trainer == "perceptron":
        return _run_perceptron(args, data, start)
    return _run_gradient(args, data, start)


def _build_model(args, in_shape):
    from ..model import Sequential
    from ..registry import get_model
    if Path(args.model).suffix == ".json":
        spec = json.loads(Path(args.model).read_text())
    else:
        spec = get_model(args.model)()
    model = Sequential.from_spec(spec, seed=args.seed)
    model.output_shape(in_shape)  # a clear error now if the model can't take this data
    return model.to(getattr(args, "device", "cpu"))


def _run_gradient(args, data, start):
    from .. import io
    from ..registry import get_loss
    from ..train import TRAINERS
    model = _build_model(args, data.x_train.shape[1:])
    loss = get_loss(args.loss)()
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    extra = {}
    if args.comm is not None:
        from ..distributed import TRAINERS
        extra["comm"] = args.comm
    trainer = TRAINERS[args.trainer](
        model, loss, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        batch_size=args.batch_size, seed=args.seed, progress=progress,
        callbacks=[lambda t, row: _say(args, _epoch_line(row, args.epochs))], **extra)
    _say(args, f"model: {args.model}, {model.num_params():,} parameters; trainer {args.trainer}, "
               f"lr {args.lr}, momentum {args.momentum}, batch {args.batch_size}"
               + (f"; device {args.device}" if args.device != "cpu" else ""))
    history = trainer.fit(data.x_train, data.y_train, epochs=args.epochs,
                          x_test=data.x_test, y_test=data.y_test)
    result = {"model": args.model, "dataset": data.name, "trainer": args.trainer,
              "epochs": args.epochs, "train_loss": history.last("train_loss"),
              "test_loss": history.last("test_loss"),
              "test_accuracy": history.last("test_accuracy"),
              "seconds": time.perf_counter() - start,
              "first_step_seconds": trainer.first_step_seconds, "history": history.epochs,
              "device": args.device}
    _add_mpi(args, result)
    if args.save and _is_root(args):
        result["saved"] = str(io.save(model.to("cpu"), args.save))
    _finish(args, result, f"test accuracy {100 * (result['test_accuracy'] or 0):.2f}%")
    return 0


def _epoch_line(row, epochs):
    acc = row.get("test_accuracy")
    acc_text = f" test_loss {row['test_loss']:.4f} test_accuracy {100 * acc:.2f}%" if acc is not None else ""
    return f"epoch {row['epoch']}/{epochs} train_loss {row['train_loss']:.4f}{acc_text} ({row['seconds']:.1f}s)"


def _run_perceptron(args, data, start):
    from .. import io
    from ..train import train_perceptron
    if args.comm is not None:
        from functools import partial
        from ..distributed import train_perceptron_distributed
        train_perceptron = partial(train_perceptron_distributed, comm=args.comm)
    try:
        neg, pos = (int(c) for c in args.classes.split(","))
    except ValueError:
        raise ValueError(f"--classes takes two class numbers NEG,POS, got {args.classes!r}") from None
    x, y = data.binary(neg, pos, "train")
    xt, yt = data.binary(neg, pos, "test")
    _say(args, f"perceptron: class {neg} -> -1, class {pos} -> +1: {len(x)} train / {len(xt)} test")
    result_p = train_perceptron(x, y, max_epochs=args.epochs, x_test=xt, y_test=yt,
                                callback=lambda row: _say(args, _perceptron_line(row)))
    test_error = result_p.history[-1]["test_error"]
    result = {"model": "perceptron", "dataset": data.name, "trainer": "perceptron",
              "epochs": len(result_p.history), "converged": result_p.converged,
              "updates": result_p.updates, "train_loss": result_p.history[-1]["train_error"],
              "train_error": result_p.history[-1]["train_error"], "test_error": test_error,
              "test_accuracy": 1 - test_error, "seconds": time.perf_counter() - start,
              "history": result_p.history}
    _add_mpi(args, result)
    if args.save and _is_root(args):
        result["saved"] = str(io.save(result_p.to_model(), args.save))
    _finish(args, result, f"{'converged' if result_p.converged else 'did not converge'} after "
                          f"{result['updates']} updates; test accuracy "
                          f"{100 * result['test_accuracy']:.2f}%")
    return 0


def _perceptron_line(row):
    return (f"epoch {row['epoch']} nb_changes {row['nb_changes']} "
            f"train_error {100 * row['train_error']:.2f}% test_error {100 * row['test_error']:.2f}%")


def _is_root(args):
    comm = getattr(args, "comm", None)
    return comm is None or comm.is_root


def _add_mpi(args, result):
    if args.comm is not None:
        result["mpi"] = {"ranks": args.comm.size, "threads_per_rank": args.comm.threads,
                         "allreduce_seconds": args.comm.allreduce_seconds}


def _finish(args, result, summary):
    if not _is_root(args):
        return
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{summary} ({result['seconds']:.1f}s)")
        if "saved" in result:
            print(f"weights saved to {result['saved']}")
