"""The lecture's CNN on MNIST: the training curve and the test error.

The zoo's ``lenet`` (the lecture's Conv 32@5, pool 3, Conv 64@5, pool 2,
256, 10) trained with its train_defaults (SGD, lr 0.05, momentum 0.9, batch
100, 10 epochs) on the cross-entropy. It runs on the embedded subset, on
Fashion-MNIST where it is installed, and on the full MNIST when --data-dir
names its folder (the lecture's ~1 % test error).
"""
from __future__ import annotations

from .. import build
from ..data import load_dataset, load_mnist
from ..losses import CrossEntropy
from ..train import SGDTrainer
from ..models.lenet import lenet
from .figures import Figures
from .registry import experiment
from .result import Result, format_table, percent

DATASETS = ("mnist-5k", "fashion-mnist")
FAST_SIZES = {"train": 2000, "test": 500}


def train(data, epochs: int, seed: int = 0):
    """(model, history) of the lecture's CNN on ``data`` with lenet's train_defaults."""
    settings = lenet.train_defaults
    model = build("lenet", seed=seed)
    trainer = SGDTrainer(model, CrossEntropy(), lr=settings["lr"], momentum=settings["momentum"],
                         batch_size=settings["batch_size"], seed=seed)
    return model, trainer.fit(data.x_train, data.y_train, epochs=epochs,
                              x_test=data.x_test, y_test=data.y_test)


def _load(datasets, data_dir, notes):
    """The data sets to run on; Fashion-MNIST is skipped, with a note, where it is absent."""
    sets = []
    for name in datasets:
        try:
            sets.append(load_dataset(name))
        except FileNotFoundError as exc:
            if name != "fashion-mnist":
                raise
            notes.append(f"Fashion-MNIST skipped: {exc}")
    if data_dir is not None:
        sets.append(load_mnist(data_dir))
    return sets


@experiment("cnn-mnist",
            "the lecture's CNN (lenet): training curve and test error on the embedded MNIST "
            "subset, Fashion-MNIST when installed, full MNIST with --data-dir",
            options=("data_dir",),
            slide="MNIST",
            quote="Training time <10s (GPU), error ≃ 1%")
def run(out_dir=None, fast=False, data_dir=None, datasets=DATASETS,
        epochs: int | None = None) -> Result:
    epochs = epochs or (2 if fast else lenet.train_defaults["epochs"])
    notes = []
    sets = _load(datasets, data_dir, notes)
    if fast:
        sets = [s.subset(**FAST_SIZES) for s in sets]
    rows, numbers, runs = [], {}, {}
    for data in sets:
        model, history = train(data, epochs)
        errors = [1 - row["test_accuracy"] for row in history.epochs]
        seconds = sum(row["seconds"] for row in history.epochs)
        runs[data.name] = history
        numbers[data.name] = {"train": len(data.x_train), "test": len(data.x_test),
                              "epochs": epochs, "test_error": errors[-1],
                              "test_errors": errors, "seconds": seconds,
                              "train_losses": [row["train_loss"] for row in history.epochs]}
        rows.append([data.name, len(data.x_train), len(data.x_test), epochs,
                     f"{history.epochs[0]['train_loss']:.3f}",
                     f"{history.last('train_loss'):.4f}", percent(errors[-1]),
                     f"{seconds:.0f}s"])
    table = format_table(["data", "train", "test", "epochs", "loss epoch 1",
                          "loss last epoch", "test error", "training time"], rows)
    table += ("\nlenet 1x28x28 -> 32@5 -> pool 3 -> 64@5 -> pool 2 -> 256 -> 10; SGD lr "
              f"{lenet.train_defaults['lr']}, momentum {lenet.train_defaults['momentum']}, "
              f"batch {lenet.train_defaults['batch_size']}")
    if data_dir is None:
        notes.append("the lecture's ~1% test error is on the full MNIST: give its folder "
                     "with --data-dir")
    figs = Figures(out_dir)
    figs.draw("cnn-mnist.png", lambda fig, axes: _draw(axes, runs), ncols=2, size=(12, 4.6))
    return Result("cnn-mnist", "the lecture's CNN learns MNIST to a low test error in a few "
                               "epochs", table, numbers, figs.paths, figs.notes + notes)


def _draw(axes, runs):
    # matplotlib is there when figures are drawn; label the log axis 0.02, 0.05, 0.1, ...
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter
    for (name, history), colour in zip(runs.items(), ("tab:blue", "tab:orange", "tab:green")):
        epochs = [row["epoch"] for row in history.epochs]
        axes[0].plot(epochs, [row["train_loss"] for row in history.epochs], "o-",
                     color=colour, label=f"train, mean over the epoch ({name})")
        axes[0].plot(epochs, [row["test_loss"] for row in history.epochs], "s--",
                     color=colour, label=f"test, after the epoch ({name})")
        axes[1].plot(epochs, [100 * (1 - row["test_accuracy"]) for row in history.epochs],
                     "o-", color=colour, label=name)
    axes[0].set_yscale("log")
    axes[0].yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes[0].yaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes[0].yaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylabel("mean cross-entropy (log scale)")
    axes[0].set_title("The lecture's CNN: training curve")
    axes[1].set_ylim(bottom=0)
    axes[1].set_ylabel("test error (%)")
    axes[1].set_title("Test error after each epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
