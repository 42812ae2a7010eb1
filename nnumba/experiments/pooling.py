"""Pooling, the lecture's 1-D example: a kernel of size 2 over non-overlapping blocks,
max and average.

The engine's MaxPool1d(2) and AvgPool1d(2) against the same computation written
with numpy (a reshape into blocks of 2, then max or mean), and their backward
against finite differences: the max routes each block's gradient to its
largest input, the average splits it in halves.
"""
import numpy as np

from ..layers import AvgPool1d, MaxPool1d
from ..testing import numeric_gradient
from .common import Result, experiment, finish, format_table, vector, with_figure

SIGNAL = np.array([1, 3, 2, 6, 5, 4, 0, 5, 7, 3, 1, 2], dtype=np.float64)
KERNEL = 2
POOLS = {"max": (MaxPool1d, np.max), "average": (AvgPool1d, np.mean)}
STEP = 1e-6  # of the finite differences (values in a block differ by 1 or more)


def pool(cls, signal: np.ndarray):
    """(output, d sum(output) / d input) of the engine's pool on one 1-D signal."""
    layer = cls(KERNEL).astype(np.float64)
    x = np.ascontiguousarray(signal, dtype=np.float64).reshape(1, 1, -1)
    y = layer.forward(x)[0, 0].copy()
    grad = layer.backward(np.ones((1, 1, len(y))))[0, 0].copy()
    return y, grad


def finite_difference(cls, signal: np.ndarray) -> np.ndarray:
    """d sum(output) / d input, one input at a time."""
    at = np.array(signal, dtype=np.float64)  # a copy, perturbed in place
    return numeric_gradient(lambda: pool(cls, at)[0].sum(), at, STEP)


@experiment("pooling",
            "the lecture's 1-D pooling with a kernel of size 2: max and average over "
            "non-overlapping blocks, and where each sends the gradient",
            slide="Pooling",
            quote="The most standard type of pooling is the max-pooling, which computes max "
                  "values over non-overlapping blocks. The average pooling computes average "
                  "values per block instead of max values.")
def run(out_dir=None, fast=False, signal=SIGNAL) -> Result:
    signal = np.asarray(signal, dtype=np.float64)
    rows, numbers, outputs = [], {}, {}
    # The pool written with numpy: the signal cut into blocks of KERNEL, each reduced.
    blocks = signal[:len(signal) // KERNEL * KERNEL].reshape(-1, KERNEL)
    # Ties within a block would make the max's gradient a matter of convention.
    ties = bool(np.any(np.sort(blocks, axis=1)[:, -1] == np.sort(blocks, axis=1)[:, -2]))
    for name, (cls, reduce) in POOLS.items():
        y, grad = pool(cls, signal)
        reference = reduce(blocks, axis=1)
        entry = {"output": y.tolist(), "numpy": reference.tolist(),
                 "max_error": float(np.max(np.abs(y - reference))), "gradient": grad.tolist()}
        if name == "average" or not ties:
            entry["gradient_error"] = float(np.max(np.abs(grad - finite_difference(cls, signal))))
        numbers[name] = entry
        outputs[name] = (y, grad)
        rows.append([f"{name} pool, kernel {KERNEL}", vector(y), vector(reference),
                     vector(grad), f"{entry.get('gradient_error', float('nan')):.1e}"])
    table = format_table(["layer", "output", "numpy, by blocks", "d sum(output) / d input",
                          "vs finite differences"], rows)
    result = Result("pooling", "max-pooling keeps the largest value of each block, average "
                               "pooling its mean", f"input: {vector(signal)}\n{table}", numbers)
    return with_figure(result, out_dir, _draw, signal, outputs, ncols=2,
                       size=(12, 4.4), title=f"Pooling: 1-D, kernel of size {KERNEL}, over "
                                             f"non-overlapping blocks")


def _draw(axes, signal, outputs):
    index = np.arange(len(signal))
    for ax, (name, (y, grad)) in zip(axes, outputs.items()):
        ax.bar(index, signal, width=0.8, color="0.8", edgecolor="0.4", label="input x")
        for j, value in enumerate(y):  # each output spans the block it summarises
            ax.hlines(value, j * KERNEL - 0.4, j * KERNEL + KERNEL - 0.6, color="tab:red", lw=3,
                      label=f"{name} pool output" if j == 0 else None)
        chosen = np.flatnonzero(grad)
        shares = ", ".join(sorted({f"{g:g}" for g in grad[chosen]}))
        ax.scatter(chosen, signal[chosen] + 0.35, marker="v", color="tab:blue", s=30,
                   label=f"inputs the gradient goes to ({shares} each)")
        for edge in range(0, len(signal) + 1, KERNEL):
            ax.axvline(edge - 0.5, color="0.5", lw=0.6, ls=":")
        ax.set_xticks(index)
        finish(ax, f"{name.capitalize()} pooling", loc="upper left", ylabel="value",
               xlabel="position (dotted lines: the blocks of 2)", ylim=(0, signal.max() + 1.5))
