"""The lecture's replicated-set argument: a training set that is M samples copied K times.

With the summed loss (the lecture's L = sum_n l_n), L over the N = K M samples is
K times L over the M originals, so a gradient step of eta over all N samples is
a step of K eta over the M originals: the same trajectory for 1/K of the
computation. Three runs, in float64, from the same initial parameters:

  A: exact gradient descent over the N replicated samples, step eta;
  B: exact gradient descent over the M originals, step K eta;
  C: mini-batch SGD over the N replicated samples in order, one batch per copy
     (batch size M), step K eta: each update is one of B's.

A and B agree to rounding; C after e epochs is B after e K steps.
"""
from __future__ import annotations

import numpy as np

from .. import build
from ..data import load_dataset
from ..losses import CrossEntropy
from ..train import GDTrainer, SGDTrainer
from .common import Result, experiment, finish, format_table, with_figure

ETA = 1e-4   # on the summed loss over N = 1000 samples: 0.1 on the mean


def replicated_set(originals: int, copies: int):
    """(x, y, x_rep, y_rep): the first M embedded MNIST images in float64, and K copies."""
    data = load_dataset("mnist-5k")
    x = data.x_train[:originals].astype(np.float64)
    y = data.y_train[:originals]
    return x, y, np.tile(x, (copies, 1, 1, 1)), np.tile(y, copies)


def trajectory(trainer_cls, x, y, lr: float, epochs: int, batch_size: int, **kwargs):
    """(parameters after each epoch, from the start on): a (epochs + 1, P) array."""
    model = build("mlp", seed=0, hidden=(32,)).astype(np.float64)
    snapshots = [model.flat_params.copy()]
    trainer = trainer_cls(model, CrossEntropy(reduction="sum"), lr=lr, batch_size=batch_size,
                          callbacks=[lambda t, row: snapshots.append(model.flat_params.copy())],
                          **kwargs)
    trainer.fit(x, y, epochs=epochs)
    return np.array(snapshots)


def summed_loss(params, x, y) -> float:
    """L(w) = sum_n l_n(w) over (x, y), for parameters given as a flat vector."""
    model = build("mlp", seed=0, hidden=(32,)).astype(np.float64)
    model.flat_params[...] = params
    return CrossEntropy(reduction="sum").forward(model.predict(x), y)


@experiment("replicated-set",
            "M samples copied K times: gradient descent over the N = KM samples with step eta "
            "is SGD / GD over the M originals with step K eta, for 1/K of the computation",
            slide="Stochastic gradient descent: the replicated set",
            quote="We can visit only M = N/K samples and move by Kη, which would cut the "
                  "computation by K.")
def run(out_dir=None, fast=False, originals: int | None = None, copies: int | None = None,
        steps: int | None = None) -> Result:
    m, k = originals or (50 if fast else 100), copies or (5 if fast else 10)
    steps = steps or (2 * k if fast else 4 * k)
    n = m * k
    eta = ETA * 1000 / n  # the same step on the mean loss whatever N is
    x, y, x_rep, y_rep = replicated_set(m, k)
    runs = {"A": trajectory(GDTrainer, x_rep, y_rep, eta, steps, batch_size=100),
            "B": trajectory(GDTrainer, x, y, k * eta, steps, batch_size=m),
            "C": trajectory(SGDTrainer, x_rep, y_rep, k * eta, steps // k, batch_size=m,
                            shuffle=False)}
    a = runs["A"]
    gap_b = float(np.max(np.abs(runs["B"] - a)))
    gap_c = float(np.max(np.abs(runs["C"] - a[::k])))  # C's epoch e is A's step e K
    losses = {name: [summed_loss(p, x_rep, y_rep) for p in params] for name, params in runs.items()}
    visited = {"A": n, "B": m, "C": k * m}  # samples per recorded point
    rows = [["A: GD over the N samples", f"eta = {eta:g}", steps, steps * n, "-",
             f"{losses['A'][-1]:.4f}"],
            ["B: GD over the M originals", f"K eta = {k * eta:g}", steps, steps * m,
             f"{gap_b:.1e}", f"{losses['B'][-1]:.4f}"],
            ["C: SGD over the N, batch M", f"K eta = {k * eta:g}", steps, steps * m,
             f"{gap_c:.1e}", f"{losses['C'][-1]:.4f}"]]
    table = format_table(["run", "step", "updates", "samples visited",
                          "max |params - A's|", "L over the N samples"], rows)
    table += (f"\nM = {m} MNIST images copied K = {k} times (N = {n}); MLP 784-32-10 in "
              f"float64, summed cross-entropy; largest parameter "
              f"{np.max(np.abs(a)):.2f}")
    numbers = {"M": m, "K": k, "N": n, "eta": eta, "steps": steps,
               "max_gap_B": gap_b, "max_gap_C": gap_c,
               "max_abs_param": float(np.max(np.abs(a))),
               "losses": losses, "samples_per_point": visited}
    result = Result("replicated-set",
                    "on a set of M samples replicated K times, visiting M samples and moving by "
                    "K eta is the gradient step of eta over all N: computation cut by K",
                    table, numbers)
    return with_figure(result, out_dir, _draw, runs, losses, visited, k,
                       ncols=2, size=(12, 4.8), title="Stochastic gradient descent: the "
                                                      "replicated set, M samples copied K times")


def _draw(axes, runs, losses, visited, k):
    ax = axes[0]
    styles = {"A": ("o-", "tab:blue", "A: GD over all N, step η"),
              "B": ("s-", "tab:orange", "B: GD over the M originals, step Kη"),
              "C": ("x", "k", "C: SGD over the N, batch M, step Kη (per epoch)")}
    for name, (style, colour, label) in styles.items():
        samples = np.arange(len(losses[name])) * visited[name]
        ax.plot(samples, losses[name], style, color=colour, ms=5, lw=1, label=label,
                zorder=3 if name == "C" else 2)
    finish(ax, grid="major", xlabel="samples visited", ylabel="loss L summed over the N samples",
           title=f"Same losses for 1/K of the samples visited (K = {k})")
    ax = axes[1]
    a = runs["A"]
    floor = 1e-18  # where identical parameters are drawn
    gap_b = np.maximum(np.max(np.abs(runs["B"] - a), axis=1), floor)
    gap_c = np.maximum(np.max(np.abs(runs["C"] - a[::k]), axis=1), floor)
    ax.semilogy(np.arange(len(gap_b)), gap_b, "s-", color="tab:orange", ms=4, label="B against A")
    ax.semilogy(np.arange(len(gap_c)) * k, gap_c, "x", color="k", ms=7, label="C against A")
    ax.axhline(np.finfo(np.float64).eps * np.max(np.abs(a)), color="0.5", ls="--", lw=1,
               label="float64 epsilon × largest parameter")
    finish(ax, grid="major", ylim=(floor / 2, 1e-8), xlabel="update t",
           ylabel="max over parameters of |θ_t − θ_t(A)|",
           title="The trajectories agree to rounding (float64)")
