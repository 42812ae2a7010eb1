"""MNIST "8" vs the rest with the perceptron: raw pixels, then pixels plus products
of random pairs of pixels. More products, more capacity: the training error falls."""
from __future__ import annotations

import numpy as np

from ..data import load_dataset
from ..train import train_perceptron
from .common import feature_layer, features
from .figures import Figures
from .registry import experiment
from .result import Result, format_table, percent

PRODUCTS = (0, 100, 300, 1000, 3000, 10000)


def eight_vs_rest(data, split: str):
    x, labels = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    return x.reshape(len(x), -1), np.where(labels == 8, 1, -1)


@experiment("random-products",
            "MNIST 8 vs the rest, perceptron on pixels plus products of random pairs of "
            "pixels: train and test error for increasing numbers of products",
            features=("RandomPairProducts",))
def run(out_dir=None, fast=False, products=None, epochs: int = 50, seed: int = 0) -> Result:
    data = load_dataset("mnist-5k")
    if fast:
        data = data.subset(train=1000, test=500)
        products = products or (0, 300, 3000)
        epochs = min(epochs, 20)
    products = products or PRODUCTS
    x, y = eight_vs_rest(data, "train")
    x_test, y_test = eight_vs_rest(data, "test")
    rows, numbers = [], {}
    for count in products:
        if count:
            phi = feature_layer("RandomPairProducts", np.float32, in_features=x.shape[1],
                                num_products=count, seed=seed)
            f, f_test = features(phi, x), features(phi, x_test)
        else:
            f, f_test = x, x_test
        result = train_perceptron(f, y, max_epochs=epochs, x_test=f_test, y_test=y_test)
        last = result.history[-1]
        numbers[count] = {"features": f.shape[1], "epochs": len(result.history),
                          "converged": result.converged, "train_error": last["train_error"],
                          "test_error": last["test_error"]}
        rows.append([count, f.shape[1], len(result.history),
                     "yes" if result.converged else "no",
                     percent(last["train_error"]), percent(last["test_error"])])
    table = format_table(["products", "features", "epochs", "converged", "train error",
                          "test error"], rows)
    table += (f"\n{len(x)} train / {len(x_test)} test images (mnist-5k), 8 -> +1, the rest "
              f"-> -1; errors after the last epoch (at most {epochs}); pairs drawn with "
              f"seed {seed}")
    figs = Figures(out_dir)
    figs.draw("random-products.png", lambda fig, axes: _draw(axes[0], numbers, len(x)),
              size=(6.4, 4.4))
    return Result("random-products",
                  "pixels plus products of random pairs of pixels: more products, lower "
                  "training error", table, {"products": numbers, "train": len(x)},
                  figs.paths, figs.notes)


def _draw(ax, numbers, n_train):
    counts = list(numbers)
    # 0 products on a log axis: plot it one step left of the first count, labelled 0.
    first = min((c for c in counts if c), default=3)
    at = [c if c else first / 3 for c in counts]
    ax.plot(at, [100 * numbers[c]["train_error"] for c in counts], "o-", label="train error")
    ax.plot(at, [100 * numbers[c]["test_error"] for c in counts], "s-", label="test error")
    ax.set_xscale("log")
    ax.set_xticks(at, [str(c) for c in counts])
    ax.xaxis.set_minor_formatter("")
    ax.set_xlabel("number of random pixel-pair products added to the 784 pixels")
    ax.set_ylabel("error (%)")
    ax.set_title(f"Perceptron, MNIST 8 vs the rest ({n_train} training images):\n"
                 f"error against the number of products")
    ax.grid(True, alpha=0.3)
    ax.legend()
