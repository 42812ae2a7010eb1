"""An MLP with tanh against the same MLP with ReLU on a 2-D toy task: two spirals.

Both are the zoo's ``mlp`` (2 -> 32 -> 32 -> 2) trained alike by mini-batch SGD
on the cross-entropy; only the activation differs. Both fit the task; the
decision regions show the difference: smooth curves for tanh, polygons for
ReLU (a ReLU network is piecewise affine).
"""
from __future__ import annotations

import numpy as np

from .. import build
from ..losses import CrossEntropy
from ..train import SGDTrainer
from .common import (Result, decision_regions, experiment, format_table, label_scatter, percent,
                     with_figure)

ACTIVATIONS = ("Tanh", "ReLU")
HIDDEN = (32, 32)


def spirals(n: int, noise: float = 0.02, seed: int = 0, turns: float = 1.5):
    """Two interleaved spirals in the unit disk; labels 0 and 1 (one arm each)."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    r = np.sqrt(rng.uniform(0.01, 1.0, n))  # uniform density over the disk
    theta = 2 * np.pi * turns * r + np.pi * label
    x = np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    return x + rng.normal(0, noise, (n, 2)), label


def train(activation: str, x, y, epochs: int, seed: int = 0):
    """(model, history) of the zoo's mlp with ``activation``, in float64."""
    model = build("mlp", seed=seed, inputs=2, hidden=HIDDEN, classes=2,
                  activation=activation).astype(np.float64)
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.05, momentum=0.9, batch_size=10, seed=seed)
    return model, trainer.fit(x, y, epochs=epochs)


def margin(model, points):
    """logit(1) - logit(0): >= 0 where the model says class 1."""
    z = model.predict(np.ascontiguousarray(points, dtype=model.dtype))
    return z[:, 1] - z[:, 0]


@experiment("tanh-vs-relu",
            "an MLP 2-32-32-2 with tanh against ReLU on two spirals: train and test error, "
            "decision regions plotted",
            slide="Activation functions",
            quote="The two classical activation functions are the hyperbolic tangent and the "
                  "rectified linear unit (ReLU).")
def run(out_dir=None, fast=False, epochs: int | None = None) -> Result:
    epochs = epochs or (60 if fast else 150)
    x, y = spirals(400, seed=0)
    x_test, y_test = spirals(2000, seed=1)
    rows, numbers, models = [], {}, {}
    for activation in ACTIVATIONS:
        model, history = train(activation, x, y, epochs)
        train_error = float(np.mean((margin(model, x) >= 0) != (y == 1)))
        test_error = float(np.mean((margin(model, x_test) >= 0) != (y_test == 1)))
        models[activation] = model
        numbers[activation] = {"train_error": train_error, "test_error": test_error,
                               "train_loss": history.last("train_loss"),
                               "losses": [row["train_loss"] for row in history.epochs]}
        rows.append([activation, model.num_params(), f"{history.last('train_loss'):.4f}",
                     percent(train_error), percent(test_error)])
    table = format_table(["activation", "parameters", "final train loss", "train error",
                          "test error"], rows)
    table += (f"\n{len(x)} training / {len(x_test)} test points; {epochs} epochs of SGD, "
              f"batch 10, lr 0.05, momentum 0.9, same initial draw for both")
    result = Result("tanh-vs-relu", "an MLP fits the two spirals with tanh as with ReLU; tanh "
                                    "bends its boundary smoothly, ReLU in straight pieces",
                    table, {"activations": numbers, "epochs": epochs, "train": len(x),
                            "test": len(x_test)})
    return with_figure(result, out_dir, _draw, x, y, models, numbers, ncols=2, size=(10, 5),
                       title=f"Activation functions: the same MLP with tanh and with ReLU on two "
                             f"spirals ({len(x)} training points)")


def _draw(axes, x, y, models, numbers):
    lim = (-1.2, 1.2)
    for ax, (activation, model) in zip(axes, models.items()):
        decision_regions(ax, lambda p, m=model: margin(m, p), lim, lim, steps=400)
        label_scatter(ax, x, np.where(y == 1, 1, -1), s=10)
        ax.set_title(f"MLP 2-32-32-2 with {activation}: decision regions\n"
                     f"train error {percent(numbers[activation]['train_error'])}, "
                     f"test error {percent(numbers[activation]['test_error'])}", fontsize=10)
        ax.set(xlabel="x₁", ylabel="x₂", aspect="equal")
    axes[0].legend(loc="upper right", fontsize=8)
