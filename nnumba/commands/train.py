"""``nnumba train``: train a model on a data set and report its test accuracy."""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import numpy as np

from ..data.csv_table import LabelColumnText
from ..errors import NnumbaError
from ..jsonfile import read_json
from ..layers.validation import printable
from ..models.fitting import FALLBACK_DEFAULTS, model_for_data, say_defaults, train_defaults
from ..paths import model_file
from ..registry import get_loss, get_registry
from . import model_options
from .train_report import epoch_line, finish, interrupted, is_root, perceptron_line, sigterm_under_mpi
from .train_saved import as_saved_classes, build_loss, load_saved, resume, saved_settings


def add_parser(sub):
    p = sub.add_parser("train", help="train a model (the MLP on the embedded MNIST by default)",
                       description="Train a model. By default: the MLP 784-256-10 with "
                                   "mini-batch SGD on the embedded 4,000/1,000 MNIST split.")
    p.add_argument("--model",  # None: "mlp", filled in once --trainer perceptron is ruled out
                   help="a registered model name (see `nnumba plugins`), a JSON spec file, "
                        "or weights saved by --save to train on from (default mlp)")
    model_options.add_argument(p)
    p.add_argument("--dataset", help=_dataset_help())
    p.add_argument("--data-dir", help="folder holding the data set's IDX files")
    p.add_argument("--download", action="store_true", help="download the data set if missing")
    p.add_argument("--data", metavar="FILE",
                   help="your own data instead of --dataset: an .npz holding x_train, y_train"
                        "[, x_test, y_test], or a .csv with a label column")
    p.add_argument("--label-column", metavar="NAME_OR_INDEX", type=LabelColumnText,
                   help="--data CSV only: the column of labels, by header name or 0-based "
                        "index, negative from the end (default: the last column)")
    p.add_argument("--test-fraction", type=float,
                   help="--data without a test set: the share of each class held out for "
                        "testing (default 0.2), the same samples whatever --seed")
    p.add_argument("--trainer", choices=("sgd", "gd", "perceptron"),
                   help="mini-batch SGD (default; a saved model: its last run's), gradient "
                        "descent over the whole set, or the lecture's perceptron (two "
                        "classes, its own linear unit)")
    # None: the model's own train_defaults, else FALLBACK_DEFAULTS; --weight-decay and
    # --classes: None until OPTION_DEFAULTS fills them in. So a note can name the
    # options the user gave where they do not apply.
    own = {k: f"default: the model's train_defaults, else {v}" for k, v in
           FALLBACK_DEFAULTS.items()}
    p.add_argument("--loss", help="a registered loss name; " + own["loss"])
    p.add_argument("--epochs", type=int, help=own["epochs"] + " (MLP: 20; perceptron: at most 100; a saved model: 10 more)")
    p.add_argument("--batch-size", type=int, help=own["batch_size"])
    p.add_argument("--lr", type=float, help="learning rate; " + own["lr"] + " (the MLP's: 0.1)")
    p.add_argument("--momentum", type=float, help=own["momentum"])
    p.add_argument("--weight-decay", type=float, help="default 0")
    p.add_argument("--seed", type=int,
                   help="seeds the weights and the batch order (default 0: runs repeat; a "
                        "saved model goes on with its last run's batch order)")
    p.add_argument("--classes", help="the perceptron, and a loss on signs (Hinge, Logistic): "
                   "the two classes NEG,POS by number or name (default: the lecture's 0 vs 1)")
    p.add_argument("--train-size", type=int, help="use only the first N training samples")
    p.add_argument("--test-size", type=int, help="use only the first N test samples")
    p.add_argument("--save", help="write the trained weights to this .npz file")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    p.add_argument("--drop-last", action=argparse.BooleanOptionalAction, default=None, help=(
        "SGD: leave out a short last batch (a batch norm refuses one sample); default: no, "
        "a saved model: as its last run"))
    p.add_argument("--device", default="cpu", help=(
        "cpu (default), cuda (an NVIDIA GPU with numba.cuda kernels; needs pip install \"nnumba"
        "[cuda]\") or a plugin's device (nnumba plugins): an error, never a fallback"))
    p.add_argument("--mpi", action="store_true", help=(
        "train data-parallel over MPI ranks: `mpiexec -n N nnumba train` (automatic under "
        "mpiexec with N > 1; needs pip install \"nnumba[mpi]\")"))
    p.set_defaults(run=run)


def _dataset_help() -> str:
    """The registered data sets (a plugin's too), named when the parser is built."""
    names = [name for name, _ in get_registry().all_entries("dataset")]
    listed = ", ".join(names).replace("%", "%%")  # argparse %-formats help
    return f"a registered data set (see `nnumba plugins`): {listed}; default mnist-5k (embedded)"


OPTION_DEFAULTS = {"weight_decay": 0.0, "classes": "0,1"}
# What the perceptron has no use for: it has no loss, learning rate nor batches.
_NOT_FOR_PERCEPTRON = ("lr", "batch_size", "momentum", "weight_decay", "loss")


def _unused_options(args) -> str | None:
    """A note naming the options the user gave that this run does not use, or None.
    A note, not an error: a script may pass one set of options to every trainer.
    Called before OPTION_DEFAULTS are filled in and, for the perceptron, with only
    --epochs filled in, so that only the user's options count."""
    if args.trainer == "perceptron":
        unused, who, why = _NOT_FOR_PERCEPTRON, "--trainer perceptron", ""
    elif args.classes is not None and _target_kind(args.loss) != "signs":
        unused, who, why = ("classes",), f"loss {args.loss}", " (it trains on every class)"
    else:
        return None
    given = [f"--{name.replace('_', '-')}" for name in unused if getattr(args, name) is not None]
    return f"note: {who} does not use {', '.join(given)}{why}" if given else None


def _fill_defaults(args):
    """Options left unset take the model's train_defaults (the perceptron: 100 epochs),
    else nnumba's fallback; returns a line saying which did, or None when every one
    was given.  A loss that is not registered is an error naming where it came from."""
    if args.trainer == "perceptron":
        defaults, own, whose = {"epochs": 100}, {"epochs"}, "the perceptron's"
    elif _from_file(args):  # a saved model: its last run's settings, where it kept them
        own = saved_settings(args)
        defaults, whose = {**FALLBACK_DEFAULTS, **own}, f"{args.model}'s last run"
    else:
        defaults, own = train_defaults(args.model)
        whose = f"{args.model}'s train_defaults"
    filled = {k: v for k, v in defaults.items() if getattr(args, k) is None}
    vars(args).update(filled)
    if args.trainer != "perceptron":
        try:
            get_loss(args.loss)
        except LookupError as exc:
            if "loss" in filled and "loss" in own:  # a saved model's: its last run's
                said = (f"{whose} used" if _from_file(args) else f"model {whose} name") + (
                    "" if str(exc).startswith("unknown") else f" loss {args.loss!r}, but")
                raise ValueError(f"{said} {exc}") from None
            raise
    return say_defaults(filled, own, whose)


def _check_options(args):
    """Refuse what cannot run, before anything loads."""
    if args.trainer == "perceptron" and args.model is not None:
        raise ValueError(f"--model does not apply to --trainer perceptron, which trains its own "
                         f"single linear unit (got --model {args.model}): drop --model")
    args.model = "mlp" if args.model is None else args.model  # "" is refused below
    for flag, low in (("epochs", 1), ("batch_size", 1), ("train_size", 1), ("test_size", 1),
                      ("seed", 0)):  # --seed < 0: the model's factory did not name --seed
        value = getattr(args, flag)
        if value is not None and value < low:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= {low}, got {value}")
    args.same_order, args.seed = args.seed is None, args.seed or 0  # see train_saved
    # An empty --dataset quietly fell back to the default data set; --data '' read '.'.
    for flag, what in (("dataset", "a name (see `nnumba plugins`)"), ("data", "a file name"),
                       ("model", "a model name or a spec file")):
        value = getattr(args, flag)
        if value is not None and not value.strip():
            raise ValueError(f"--{flag} needs {what}, got {value!r}")
    if args.data is not None:
        given = [f for f, v in (("--dataset", args.dataset), ("--data-dir", args.data_dir),
                                ("--download", args.download)) if v]
        if given:
            raise ValueError(f"--data FILE is your own data: drop {', '.join(given)}")
    elif args.label_column is not None or args.test_fraction is not None:
        raise ValueError("--label-column and --test-fraction apply to --data FILE only")
    if args.model_option and (_from_file(args) or args.trainer == "perceptron"):
        raise ValueError("--model-option applies to named models, not to "
                         + ("the perceptron" if args.trainer == "perceptron" else
                            f"the file {args.model}"))


def _from_file(args) -> str | None:
    """'.json' (a spec) or '.npz' (a saved model, trained on) where --model is a file."""
    return model_file(args.model)


def _load_data(args):
    from ..data import load_arrays, load_dataset  # (load_dataset checks what a loader gives)
    if args.data is not None:
        # the held-out samples are the file's: the same whatever --seed, or none (going on)
        data = load_arrays(args.data, label_column=args.label_column,
                           test_fraction=args.test_fraction, seed=0)
    else:
        data = load_dataset(args.dataset or "mnist-5k", root=args.data_dir, download=args.download)
    if args.train_size is not None or args.test_size is not None:
        data = data.subset(train=args.train_size, test=args.test_size)
    return data


def _say(args, text):
    # With --json, stdout carries only the JSON object; under MPI only rank 0 speaks.
    if text and is_root(args):  # None: nothing to say; class names may hold escapes
        print(printable(text), file=sys.stderr if args.json else sys.stdout, flush=True)


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
    from ..distributed import abort_on_error  # without MPI (comm None): a plain block
    start = time.perf_counter()
    args.comm = _mpi_session(args)
    sigterm_under_mpi(args.comm)
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
    _check_options(args)
    if _from_file(args) == ".npz":  # read before the data: a bad file fails at once
        args.saved = load_saved(args.model)
    defaults = _fill_defaults(args)  # before the note: the model may name its loss
    args.trainer = args.trainer or "sgd"
    _say(args, _unused_options(args))
    vars(args).update({k: v for k, v in OPTION_DEFAULTS.items() if getattr(args, k) is None})
    if args.save is not None:  # a path that cannot be written fails now, not after training
        from ..io import check_save_path
        args.save = check_save_path(args.save, create=False)  # no folders for a refused run
    args.device = _check_device(args).name
    if _from_file(args) == ".json" and args.trainer != "perceptron":
        args.spec = _read_spec(args.model)
    if args.trainer != "perceptron" and args.device == "cpu" and args.comm is None:
        from ..precompile import prestart
        prestart()  # compile workers import numba while the data load; fit() decides
    data = _load_data(args)  # every rank loads from disk; each trains on its shares only
    _say(args, f"data: {data.name}, {len(data.x_train)} train / {len(data.x_test)} test "
               f"({data.description})")
    _say(args, defaults)
    if args.comm is not None:
        _say(args, f"MPI: {args.comm.size} ranks, {args.comm.threads} thread(s) each")
    if args.trainer == "perceptron":
        return _run_perceptron(args, data, start)
    return _run_gradient(args, data, start)


def _read_spec(path):
    """The spec in the file at ``path``, checked before any data loads: every layer is
    built shapes-only (each argument checked, nothing allocated). Errors name the file."""
    from ..cli import naming
    from ..model import Sequential
    from ..summary import build_shapes_only
    spec = read_json(path, "model spec")  # names the file itself
    try:
        build_shapes_only(Sequential.check_spec(spec))
    except (NnumbaError, ValueError) as exc:
        raise naming(exc, f"model spec {path}") from None
    return spec


def _build_model(args, data):
    """(model, data) on the training device: a named model adapts its inputs and
    classes to the data (and the data is reshaped to the model's own input shape
    where that is needed); a spec file is read and checked against the data, and a
    saved model (.npz) trains on from its weights (its optimizer starts afresh). Any
    error is one line naming the model or the file."""
    kind = _target_kind(args.loss) if _from_file(args) == ".npz" else None
    if kind in ("classes", "values"):  # before the labels become one-hot rows
        data = as_saved_classes(args, data, kind, _say)
    data, outputs = _targets_for_loss(args, data)
    if kind == "signs":  # after the two classes became -1 and +1
        data = as_saved_classes(args, data, kind, _say)
    shape = data.x_train.shape[1:]
    if _from_file(args):
        saved = _from_file(args) == ".npz"
        source = list(args.saved[0].layers) if saved else args.spec
        try:  # a saved model trains on from its weights: no seed
            model, shape = model_for_data(
                source, shape, outputs, own_shape=args.saved[1]["input_shape"] if saved
                else None, seed=None if saved else args.seed)
        except (ValueError, TypeError, LookupError, ArithmeticError, RecursionError,
                MemoryError) as exc:
            raise ValueError(f"{'saved model' if saved else 'model spec'} {args.model}: "
                             f"{_one_line(exc)}") from None
    else:
        try:
            model, shape = model_for_data(args.model, shape, outputs,
                                          options=model_options.parse(args.model_option),
                                          seed=args.seed)
        except (TypeError, ArithmeticError, RecursionError, MemoryError) as exc:
            from ..cli import _raised_in_plugin
            if not isinstance(exc, NnumbaError) and _raised_in_plugin(exc):
                raise  # a plugin's bug: the CLI names the plugin and its line
            raise ValueError(f"model {args.model!r}: {_one_line(exc)}") from exc
    if shape != data.x_train.shape[1:]:
        _say(args, f"inputs reshaped from {data.x_train.shape[1:]} to {shape}, the input "
                   f"shape of {args.model}")
    # a saved float64 model: the data follows it
    x_train, x_test = (x.astype(model.dtype, copy=False).reshape((-1,) + shape)
                       for x in (data.x_train, data.x_test))
    data = replace(data, x_train=x_train, x_test=x_test)
    return model.to(getattr(args, "device", "cpu")), data


def _targets_for_loss(args, data):
    """(data, outputs): the data sets' class labels as the loss takes its targets, and
    the model's outputs for them (None: as the model has them).  A loss on classes
    (CrossEntropy) takes the labels, one output per class; a loss on signs (Hinge,
    Logistic) the two classes of --classes as -1 / +1, one output; a loss on values
    (MSE) the labels one-hot, one output per class."""
    kind = _target_kind(args.loss)
    if kind == "classes":
        return data, len(data.classes)
    if kind == "signs":
        neg, pos, (x, y), (xt, yt) = _two_classes(args, data, f"targets for {args.loss}")
        return replace(data, x_train=x, y_train=y, x_test=xt, y_test=yt,
                       classes=[data.classes[neg], data.classes[pos]]), 1
    if kind == "values":
        eye = np.eye(len(data.classes), dtype=np.float32)
        _say(args, f"targets for {args.loss}: the class labels one-hot "
                   f"({len(data.classes)} values per sample)")
        return replace(data, y_train=eye[data.y_train], y_test=eye[data.y_test]), \
            len(data.classes)
    return data, None  # a loss that says nothing of its targets takes them as they come


def _target_kind(loss_name) -> str | None:
    """What the loss takes as targets: 'classes' (labels), 'signs' (-1/+1 of the two
    --classes), 'values' (the labels one-hot), or None where the loss does not say."""
    loss = get_loss(loss_name)
    kinds = {kind for *_, kind in getattr(loss, "examples", [])}
    if getattr(loss, "target_dtype", None) == "int64" or "classes" in kinds:
        return "classes"
    return next(iter(kinds)) if len(kinds) == 1 and kinds <= {"signs", "values"} else None


def _one_line(exc) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__


def _run_gradient(args, data, start):
    from ..train import TRAINERS
    model, data = _build_model(args, data)
    loss = build_loss(args)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    extra = {}
    if args.comm is not None:
        from ..distributed import TRAINERS
        extra["comm"] = args.comm
    trainer = TRAINERS[args.trainer](
        model, loss, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        batch_size=args.batch_size, seed=args.seed, progress=progress,
        callbacks=[lambda t, row: _say(args, epoch_line(row, t.epochs_before + args.epochs))], **extra)
    _say(args, f"model: {args.model}{' (its weights, trained on)' * (_from_file(args) == '.npz')}, "
               f"{model.num_params():,} parameters; trainer {args.trainer}, "
               f"lr {args.lr}, momentum {args.momentum}, batch {args.batch_size}"
               + (f"; device {args.device}" if args.device != "cpu" else ""))
    # output i scores class i where the loss takes labels or one-hot rows: saved with it
    info = {"input_shape": data.x_train.shape[1:],  # signs: the -1 and +1 classes
            "classes": data.classes if _target_kind(args.loss) else None, "training": trainer}
    resume(args, trainer, _say)
    try:
        history = trainer.fit(data.x_train, data.y_train, epochs=args.epochs,
                              x_test=data.x_test, y_test=data.y_test)
    except KeyboardInterrupt as stop:
        if args.comm is not None:  # every rank is stopped: mpiexec passes Ctrl-C to all
            raise
        return interrupted(args, trainer, lambda: model.to("cpu"), info, stop, start)
    result = {"model": args.model, "dataset": data.name, "trainer": args.trainer,
              "epochs": args.epochs, "train_loss": history.last("train_loss"),
              "test_loss": history.last("test_loss"),
              "test_accuracy": history.last("test_accuracy"),
              "seconds": time.perf_counter() - start,
              "first_step_seconds": trainer.first_step_seconds, "history": history.epochs,
              "device": args.device}
    accuracy = result["test_accuracy"]
    return finish(args, result, f"test accuracy {100 * accuracy:.2f}%" if accuracy is not None
                   else f"test loss {result['test_loss']:.4f} (accuracy does not apply)",
                   lambda: model.to("cpu"), info)


def _run_perceptron(args, data, start):
    from ..train import train_perceptron
    if args.comm is not None:
        from functools import partial
        from ..distributed import train_perceptron_distributed
        train_perceptron = partial(train_perceptron_distributed, comm=args.comm)
    neg, pos, (x, y), (xt, yt) = _two_classes(args, data, "perceptron")
    info = {"input_shape": x.shape[1:], "classes": [data.classes[neg], data.classes[pos]]}
    try:  # (info: its -1 and +1 classes)
        result_p = train_perceptron(x, y, max_epochs=args.epochs, x_test=xt, y_test=yt,
                                    callback=lambda row: _say(args, perceptron_line(row)))
    except KeyboardInterrupt as stop:
        if args.comm is not None or not hasattr(stop, "result"):
            raise
        return interrupted(args, stop.result, stop.result.to_model, info, stop, start)
    test_error = result_p.history[-1]["test_error"]
    result = {"model": "perceptron", "dataset": data.name, "trainer": "perceptron",
              "epochs": result_p.epochs, "converged": result_p.converged,
              "updates": result_p.updates, "train_loss": result_p.history[-1]["train_error"],
              "train_error": result_p.history[-1]["train_error"], "test_error": test_error,
              "test_accuracy": 1 - test_error, "seconds": time.perf_counter() - start,
              "history": result_p.history}
    return finish(args, result, f"{'converged' if result_p.converged else 'did not converge'} "
                                 f"after {result['updates']} updates; test accuracy "
                                 f"{100 * result['test_accuracy']:.2f}%", result_p.to_model,
                   info)


def _two_classes(args, data, who: str):
    """(neg, pos, (x, y), (x_test, y_test)): the two classes of --classes, as -1 and +1;
    ``who`` takes them, says a line."""
    names = args.classes.split(",")
    if len(names) != 2:
        raise ValueError(f"--classes takes two classes NEG,POS, got {args.classes!r}")
    neg, pos = (_class_number(data, name.strip()) for name in names)
    if neg == pos:  # by name: binary() would say "got 0 twice"
        raise ValueError(f"--classes: the two classes must differ, got {args.classes!r}")
    # (binary refuses a class without training samples: else it "converges" on one)
    (x, y), (xt, yt) = data.binary(neg, pos, "train"), data.binary(neg, pos, "test")
    _say(args, f"{who}: class {_shown(data, neg)} -> -1, class {_shown(data, pos)} -> +1: "
               f"{len(x)} train / {len(xt)} test")
    return neg, pos, (x, y), (xt, yt)


def _shown(data, c) -> str:
    """Class c as a line names it: its name, quoted, unless that is its number (names
    such as '1', '10' sort as text, so class 1 may be the one named '10')."""
    name = data.classes[c] if 0 <= c < len(data.classes) else str(c)
    return str(c) if name == str(c) else repr(name)


def _class_number(data, name) -> int:
    """A class given by its name (a --data CSV's "setosa") or by its number, in ASCII
    digits (int() reads "1_0" and other scripts' digits as 10)."""
    if name in data.classes:
        return data.classes.index(name)
    if name.isascii() and name.isdecimal() and int(name) < len(data.classes):
        return int(name)
    raise ValueError(f"--classes: {name!r} is neither a class of {data.name} "
                     f"({', '.join(data.classes[:10])}) nor a class number 0.."
                     f"{len(data.classes) - 1}")
