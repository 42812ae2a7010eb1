"""HOG features (8 x 8 cells, 9 orientation bins) with a linear classifier on the
digits, against raw pixels: "shallow learning", hand-designed features and one
trained linear map (softmax regression over the 10 digits, mini-batch SGD).

Normalisation: Dalal and Triggs normalise the cell histograms over overlapping
blocks of 2 x 2 cells (stride one cell) with L2-Hys: L2-normalise the block's
vector, clip it at 0.2, L2-normalise again; each cell then appears in several
blocks, normalised against its neighbours' contrast. That is the default here
(``normalization="block"``); ``"cell"`` normalises each cell's histogram alone
(the HOG layer's own ``normalize=True``).
"""
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..data import load_dataset
from ..layers import Linear
from ..losses import CrossEntropy
from ..model import Sequential
from ..train import SGDTrainer
from .common import Result, experiment, feature_layer, features, format_table, percent, with_figure

# name -> HOG cell size (9 bins each); None is the raw pixels. 8 x 8 is the lecture's;
# 7 x 7 cells tile all of 28 x 28 (8 x 8 leaves a 4-pixel border out); 4 x 4 is finer.
VARIANTS = {"raw pixels": None, "HOG 8x8 cells": 8, "HOG 7x7 cells": 7, "HOG 4x4 cells": 4}
BINS = 9
BLOCK, CLIP, EPS = 2, 0.2, 1e-5  # Dalal and Triggs: 2 x 2 cells per block, L2-Hys
NORMALIZATIONS = {"block": "L2-Hys over blocks of 2x2 cells, stride 1 cell (Dalal and Triggs)",
                  "cell": "each cell's histogram L2-normalised alone"}


def block_normalize(cells: np.ndarray, block: int = BLOCK, clip: float = CLIP,
                    eps: float = EPS) -> np.ndarray:
    """(N, cells_y, cells_x, bins) raw cell histograms -> (N, blocks * block^2 * bins):
    every block of block x block cells, L2-Hys normalised, in (row, column) order."""
    n, cy, cx, bins = cells.shape
    if cy < block or cx < block:
        raise ValueError(f"{cy} x {cx} cells hold no block of {block} x {block}")
    windows = sliding_window_view(cells, (block, block), axis=(1, 2))  # n, by, bx, bins, b, b
    v = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, cy - block + 1, cx - block + 1, -1)
    v = v / np.sqrt(np.sum(v * v, axis=-1, keepdims=True) + eps ** 2)
    v = np.minimum(v, clip)
    v = v / np.sqrt(np.sum(v * v, axis=-1, keepdims=True) + eps ** 2)
    return v.reshape(n, -1)


def hog_features(images: np.ndarray, cell_size: int, normalization: str = "block"):
    """HOG of (N, 1, 28, 28) images with 9 bins, normalised per block or per cell."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, "
                         f"got {normalization!r}")
    per_cell = normalization == "cell"
    hog = feature_layer("HOG", np.float32, cell_size=cell_size, bins=BINS, normalize=per_cell)
    h = features(hog, images)
    return h if per_cell else block_normalize(h.reshape(len(h), *hog.cells, BINS))


def linear_classifier(x, y, x_test, y_test, epochs: int, seed: int = 0):
    """(train accuracy, test accuracy) of softmax regression trained by SGD on x."""
    model = Sequential(Linear(x.shape[1], 10), seed=seed)
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.05, momentum=0.9, batch_size=50, seed=seed)
    trainer.fit(x, y, epochs=epochs)
    return tuple(float(np.mean(model.predict(a).argmax(axis=1) == b))
                 for a, b in ((x, y), (x_test, y_test)))


@experiment("hog", "HOG (8x8 cells, 9 orientation bins, normalised over blocks as Dalal "
                   "and Triggs) with a linear classifier on the digits, against raw pixels",
            features=("HOG",),
            slide="Histogram of oriented gradients",
            quote="Divide the image in 8×8 blocks, compute in each the distribution of edge "
                  "orientations over 9 bins.")
def run(out_dir=None, fast=False, epochs: int = 20, normalization: str = "block") -> Result:
    data = load_dataset("mnist-5k")
    if fast:
        data = data.subset(train=2000, test=500)
        epochs = min(epochs, 10)
    variants = [(name, cell, normalization) for name, cell in VARIANTS.items()]
    if normalization == "block":  # and the lecture's cells normalised alone, to compare
        variants.insert(2, ("HOG 8x8 cells", 8, "cell"))
    rows, numbers = [], {}
    for name, cell, norm in variants:
        start = time.perf_counter()
        if cell is None:
            x, x_test = (a.reshape(len(a), -1) for a in (data.x_train, data.x_test))
        else:
            name = f"{name}, {norm} norm"
            x, x_test = (hog_features(a, cell, norm) for a in (data.x_train, data.x_test))
        seconds = time.perf_counter() - start
        train_acc, test_acc = linear_classifier(x, data.y_train, x_test, data.y_test, epochs)
        numbers[name] = {"features": x.shape[1], "cell_size": cell, "normalization": norm,
                         "train_accuracy": train_acc, "test_accuracy": test_acc,
                         "feature_seconds": seconds}
        rows.append([name, x.shape[1], percent(train_acc), percent(test_acc)])
    table = format_table(["input to the linear classifier", "features", "train accuracy",
                          "test accuracy"], rows)
    table += (f"\n{data.name}: {len(data.x_train)} train / {len(data.x_test)} test; 9 "
              f"orientation bins; normalisation used: {NORMALIZATIONS[normalization]}"
              f"\nsoftmax regression, SGD lr 0.05 momentum 0.9, batch 50, {epochs} epochs")
    result = Result("hog", "hand-designed HOG features with a linear classifier: with cells "
                           "that tile the digit, more accurate than the pixels from fewer "
                           "inputs; the lecture's 8x8 cells (a 3x3 grid) come close", table,
                    {"variants": numbers, "normalization": normalization})
    return with_figure(result, out_dir, _draw, data, numbers, ncols=3,
                       size=(15, 4.8), title="Histogram of oriented gradients (HOG) with a "
                                             "linear classifier, against raw pixels")


def _draw(axes, data, numbers):
    image = data.x_train[np.flatnonzero(data.y_train == 8)[0]]
    hog = feature_layer("HOG", np.float32, cell_size=8, bins=BINS)
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
    axes[1].set_title("Its cell histograms: edge orientations weighted\nby gradient "
                      "magnitude (drawn normalised per cell)")
    for ax in axes[:2]:
        ax.set(xlabel="pixel column", ylabel="pixel row")
    names = list(numbers)
    test = [100 * numbers[n]["test_accuracy"] for n in names]
    bars = axes[2].barh(range(len(names)), test, color="tab:blue")
    for bar, name in zip(bars, names):
        axes[2].text(bar.get_width() - 1, bar.get_y() + bar.get_height() / 2,
                     f"{bar.get_width():.1f}% ({numbers[name]['features']} features)",
                     ha="right", va="center", color="w", fontsize=9)
    axes[2].set_yticks(range(len(names)), names, fontsize=8)
    axes[2].invert_yaxis()
    axes[2].set(xlim=(0, 100),  # from 0: bar lengths are the accuracies
                xlabel="test accuracy (%), 10 digits", ylabel="input to the linear classifier",
                title="Linear classifier on raw pixels vs HOG")
