"""MNIST "8" vs the rest with the perceptron: raw pixels, then pixels plus products
of random pairs of pixels. More products, more capacity: the training error falls.

What is measured: the errors of the perceptron's last iterate w, after at most
``epochs`` epochs (it stops earlier after an epoch without a change), on the
training set and on the test set. The perceptron's last iterate depends on the
order of the samples and on the pairs drawn, so every count of products is run
with several seeds (each: other pairs, another order of the training samples);
the table gives the mean and the range over the seeds.
"""
import numpy as np

from ..data import load_dataset
from ..train import train_perceptron
from .common import Result, experiment, feature_layer, features, finish, format_table, with_figure

PRODUCTS = (0, 100, 300, 1000, 3000, 10000)


def eight_vs_rest(data, split: str):
    x, labels = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    return x.reshape(len(x), -1), np.where(labels == 8, 1, -1)


def errors(x, y, x_test, y_test, count: int, epochs: int, seed: int) -> dict:
    """The last iterate's train and test errors with ``count`` products drawn with
    ``seed``, the training samples visited in an order drawn with the same seed."""
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    if count:
        phi = feature_layer("RandomPairProducts", np.float32, in_features=x.shape[1],
                            num_products=count, seed=seed)
        x, x_test = features(phi, x), features(phi, x_test)
    result = train_perceptron(x, y, max_epochs=epochs, x_test=x_test, y_test=y_test)
    last = result.history[-1]
    return {"features": x.shape[1], "epochs": len(result.history),
            "converged": result.converged, "train_error": last["train_error"],
            "test_error": last["test_error"]}


def _spread(values) -> str:
    values = 100 * np.asarray(values)
    return f"{values.mean():.2f}% [{values.min():.2f}, {values.max():.2f}]"


@experiment("random-products",
            "MNIST 8 vs the rest, perceptron on pixels plus products of random pairs of "
            "pixels: train and test error for increasing numbers of products, over seeds",
            features=("RandomPairProducts",),
            slide="Feature design: products of pairs of pixels",
            quote="The original 28×28 features are supplemented with the products of pairs "
                  "of features taken at random.")
def run(out_dir=None, fast=False, products=None, epochs: int = 50, seeds: int = 5) -> Result:
    data = load_dataset("mnist-5k")
    if fast:
        data = data.subset(train=1000, test=500)
        epochs, seeds = min(epochs, 20), min(seeds, 3)
    if products is None:  # (an empty list is no default)
        products = (0, 300, 3000) if fast else PRODUCTS
    (x, y), (x_test, y_test) = (eight_vs_rest(data, split) for split in ("train", "test"))
    rows, numbers = [], {}
    for count in products:
        runs = [errors(x, y, x_test, y_test, count, epochs, seed) for seed in range(seeds)]
        train, test = ([r[key] for r in runs] for key in ("train_error", "test_error"))
        numbers[count] = {"features": runs[0]["features"], "runs": runs,
                          "train_error": float(np.mean(train)),
                          "test_error": float(np.mean(test)),
                          "converged": sum(r["converged"] for r in runs)}
        rows.append([count, runs[0]["features"], f"{numbers[count]['converged']} / {seeds}",
                     _spread(train), _spread(test)])
    table = format_table(["products", "features", "converged", "train error: mean [min, max]",
                          "test error: mean [min, max]"], rows)
    table += (f"\n{len(x)} train / {len(x_test)} test images (mnist-5k), 8 -> +1, the rest "
              f"-> -1; errors of the perceptron's last iterate after at most {epochs} epochs, "
              f"over {seeds} seeds (each: other pairs, another order of the samples)")
    result = Result("random-products", "pixels plus products of random pairs of pixels: more "
                                       "products, lower training error", table,
                    {"products": numbers, "train": len(x), "seeds": seeds, "epochs": epochs})
    return with_figure(result, out_dir, lambda axes: _draw(axes[0], numbers, seeds),
                       size=(7, 4.8), title=f"Feature design: products of pairs of pixels, MNIST "
                                            f"8 vs the rest ({len(x)} training images)")


def _draw(ax, numbers, seeds):
    counts = [c for c in numbers if c]
    for key, colour, name in (("train_error", "tab:blue", "train"),
                              ("test_error", "tab:orange", "test")):
        per_seed = 100 * np.array([[r[key] for r in numbers[c]["runs"]] for c in counts])
        mean = per_seed.mean(axis=1)
        ax.errorbar(counts, mean, yerr=[mean - per_seed.min(axis=1), per_seed.max(axis=1) - mean],
                    fmt="o-", color=colour, capsize=3,
                    label=f"{name} error, mean and range over {seeds} seeds")
        if 0 in numbers:  # no product: the raw pixels, a level, not a point on the log axis
            raw = 100 * np.array([r[key] for r in numbers[0]["runs"]])
            ax.axhline(raw.mean(), color=colour, ls="--", lw=1,
                       label=f"{name} error with the pixels alone (0 products)")
            ax.axhspan(raw.min(), raw.max(), color=colour, alpha=0.12)
    ax.set(xscale="log", xlabel="number of random pixel-pair products added to the 784 pixels",
           ylabel="error of the last iterate (%)")
    ax.set_xticks(counts, [str(c) for c in counts])
    ax.xaxis.set_minor_formatter("")
    finish(ax, grid="major", ylim=(0, None))
