"""HOG features (8 x 8 cells, 9 orientation bins) with a linear classifier on the
digits, against raw pixels: "shallow learning", hand-designed features and one
trained linear map (softmax regression over the 10 digits, mini-batch SGD)."""
from __future__ import annotations

import time

import numpy as np

from ..data import load_dataset
from ..layers import Linear
from ..losses import CrossEntropy
from ..model import Sequential
from ..train import SGDTrainer
from .common import feature_layer, features
from .figures import Figures
from .registry import experiment
from .result import Result, format_table, percent

# name -> HOG options; None is the raw pixels. 8 x 8 is the lecture's; 7 x 7
# cells tile all of 28 x 28 (8 x 8 leaves a 4-pixel border out); 4 x 4 is finer.
VARIANTS = {"raw pixels": None,
            "HOG 8x8 cells, 9 bins": {"cell_size": 8, "bins": 9},
            "HOG 7x7 cells, 9 bins": {"cell_size": 7, "bins": 9},
            "HOG 4x4 cells, 9 bins": {"cell_size": 4, "bins": 9}}


def linear_classifier(x, y, x_test, y_test, epochs: int, seed: int = 0):
    """(train accuracy, test accuracy) of softmax regression trained by SGD on x."""
    model = Sequential(Linear(x.shape[1], 10), seed=seed)
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.05, momentum=0.9, batch_size=50, seed=seed)
    trainer.fit(x, y, epochs=epochs)
    train_acc = float(np.mean(model.predict(x).argmax(axis=1) == y))
    test_acc = float(np.mean(model.predict(x_test).argmax(axis=1) == y_test))
    return train_acc, test_acc


@experiment("hog", "HOG (8x8 cells, 9 orientation bins) with a linear classifier on the "
                   "digits, against raw pixels", features=("HOG",))
def run(out_dir=None, fast=False, epochs: int = 20) -> Result:
    data = load_dataset("mnist-5k")
    if fast:
        data = data.subset(train=1000, test=500)
        epochs = min(epochs, 10)
    rows, numbers = [], {}
    for name, options in VARIANTS.items():
        start = time.perf_counter()
        if options is None:
            x, x_test = (a.reshape(len(a), -1) for a in (data.x_train, data.x_test))
        else:
            hog = feature_layer("HOG", np.float32, **options)
            x, x_test = features(hog, data.x_train), features(hog, data.x_test)
        seconds = time.perf_counter() - start
        train_acc, test_acc = linear_classifier(x, data.y_train, x_test, data.y_test, epochs)
        numbers[name] = {"features": x.shape[1], "train_accuracy": train_acc,
                         "test_accuracy": test_acc, "feature_seconds": seconds}
        rows.append([name, x.shape[1], percent(train_acc), percent(test_acc)])
    table = format_table(["input to the linear classifier", "features", "train accuracy",
                          "test accuracy"], rows)
    table += (f"\n{data.name}: {len(data.x_train)} train / {len(data.x_test)} test; softmax "
              f"regression, SGD lr 0.05 momentum 0.9, batch 50, {epochs} epochs")
    figs = Figures(out_dir)
    figs.draw("hog.png", lambda fig, axes: _draw(fig, axes, data, numbers), ncols=3,
              size=(14, 4.6))
    return Result("hog", "hand-designed HOG features with a linear classifier: far fewer "
                         "inputs than pixels, as accurate or better", table, numbers,
                  figs.paths, figs.notes)


def _draw(fig, axes, data, numbers):
    image = data.x_train[np.flatnonzero(data.y_train == 8)[0]]
    hog = feature_layer("HOG", np.float32, cell_size=8, bins=9)
    h = features(hog, image[None]).reshape(*hog.cells, hog.bins)
    axes[0].imshow(image[0], cmap="gray_r")
    for at in range(0, 28, 8):
        axes[0].axhline(at - 0.5, color="tab:orange", lw=1)
        axes[0].axvline(at - 0.5, color="tab:orange", lw=1)
    axes[0].set_title("A training digit and the 8x8 cells\n(the last 4 pixels are left out)")
    axes[1].imshow(np.zeros((28, 28)), cmap="gray_r", vmin=0, vmax=1)
    for cy in range(h.shape[0]):
        for cx in range(h.shape[1]):
            centre = np.array([cx * 8 + 3.5, cy * 8 + 3.5])
            for b, value in enumerate(h[cy, cx]):
                # An edge runs across its gradient: draw it at the bin's angle + 90 degrees.
                angle = b * np.pi / hog.bins + np.pi / 2
                half = 0.5 * 7.5 * value * np.array([np.cos(angle), np.sin(angle)])
                axes[1].plot(*np.column_stack([centre - half, centre + half]), color="k",
                             lw=0.5 + 2 * value)
    axes[1].set_title("Its HOG: per cell, edge orientations\nweighted by gradient magnitude")
    for ax in axes[:2]:
        ax.set_xlabel("pixel column")
        ax.set_ylabel("pixel row")
    names = list(numbers)
    test = [100 * numbers[n]["test_accuracy"] for n in names]
    bars = axes[2].barh(range(len(names)), test, color="tab:blue")
    for bar, name in zip(bars, names):
        axes[2].text(bar.get_width() - 1, bar.get_y() + bar.get_height() / 2,
                     f"{bar.get_width():.1f}% ({numbers[name]['features']} features)",
                     ha="right", va="center", color="w", fontsize=9)
    axes[2].set_yticks(range(len(names)), names)
    axes[2].invert_yaxis()
    axes[2].set_xlim(min(test) - 15, 100)
    axes[2].set_xlabel("test accuracy (%), 10 digits")
    axes[2].set_title("Linear classifier on raw pixels vs HOG")
