"""The perceptron on MNIST "0" (-1) vs "1" (+1): the lecture's per-epoch table."""
import numpy as np

from ..data import load_dataset
from ..train import train_perceptron
from .common import Result, experiment, with_figure

LECTURE_EPOCHS = 9                   # epoch 0 to 8 in the lecture's table
LECTURE_SIZES = (12665, 2115)        # MNIST's 0s and 1s: train, test


@experiment("perceptron-mnist",
            "the perceptron on MNIST 0 vs 1: the lecture's epoch / nb_changes / train_error / "
            "test_error table (embedded subset; full MNIST with --data-dir)",
            options=("data_dir",),
            slide="The perceptron",
            quote="This crude algorithm works often surprisingly well. With MNIST's '0's as "
                  "negative class, and '1's as positive one.")
def run(out_dir=None, fast=False, data_dir=None, max_epochs: int = 100) -> Result:
    sets = [load_dataset("mnist-5k")]
    if data_dir is not None:
        sets.append(load_dataset("mnist", root=data_dir))  # checked, as train's
    if fast:  # the embedded 0s and 1s take a second; only the full set is cut
        sets = sets[:1] + [s.subset(train=10000, test=2000) for s in sets[1:]]
    tables, numbers, runs = [], {}, []
    for data in sets:
        (x, y), (x_test, y_test) = data.binary(0, 1, "train"), data.binary(0, 1, "test")
        result = train_perceptron(x, y, max_epochs=max_epochs, x_test=x_test, y_test=y_test)
        runs.append((data.name, result))
        last = result.history[-1]
        numbers[data.name] = {"train": len(x), "test": len(x_test), "converged": result.converged,
                              "epochs": len(result.history), "updates": result.updates,
                              "final_train_error": last["train_error"],
                              "final_test_error": last["test_error"], "history": result.history}
        verdict = (f"converged: zero training errors after {len(result.history)} epochs, "
                   f"{result.updates} updates" if result.converged else
                   f"not converged after {max_epochs} epochs")
        tables.append(f"{data.name}: {len(x)} train / {len(x_test)} test images of 0 and 1\n"
                      f"{result.table()}\n{verdict}")
    result = Result("perceptron-mnist", "the perceptron separates MNIST 0 from 1 in a few epochs",
                    "\n\n".join(tables), numbers,
                    notes=[_data_note(sets, numbers, data_dir, fast)])
    return with_figure(result, out_dir, _draw, runs,
                       ncols=len(runs) + 1, size=(5 * (len(runs) + 1), 4.4),
                       title="The perceptron on MNIST 0 vs 1: errors per epoch and the weights")


def _data_note(sets, numbers, data_dir, fast) -> str:
    """Why this table may be shorter than the lecture's, and how to run on its data."""
    embedded = numbers[sets[0].name]
    note = (f"the lecture's table has {LECTURE_EPOCHS} epochs, on all of MNIST's 0s and 1s "
            f"({LECTURE_SIZES[0]:,} train / {LECTURE_SIZES[1]:,} test images); the embedded "
            f"subset has {embedded['train']} train images and takes {embedded['epochs']} "
            f"epochs")
    if data_dir is None:
        return note + "; give the full MNIST's folder with --data-dir to run on it too"
    if fast:
        return note + "; --fast cut the full MNIST to its first 10000 / 2000 images"
    return note + f"; the full MNIST from {data_dir} is run as the lecture did"


def _draw(axes, runs):
    ax = axes[0]
    for (name, result), style in zip(runs, ("-", "--")):
        epochs = [row["epoch"] for row in result.history]
        ax.plot(epochs, [100 * row["train_error"] for row in result.history], "o" + style,
                color="tab:blue", label=f"train error ({name})")
        ax.plot(epochs, [100 * row["test_error"] for row in result.history], "s" + style,
                color="tab:orange", label=f"test error ({name})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="epoch", ylabel="error (%)",
           title="Perceptron, MNIST 0 vs 1: error after each epoch")
    ax.legend()
    for ax, (name, result) in zip(axes[1:], runs):
        w = result.w.reshape(28, 28)
        bound = np.abs(w).max() or 1.0
        image = ax.imshow(w, cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set(title=f"Learnt weights w ({name}):\nred votes 1, blue votes 0",
               xlabel="pixel column", ylabel="pixel row")
        ax.figure.colorbar(image, ax=ax, shrink=0.8, label="weight")
