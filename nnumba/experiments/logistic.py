"""Logistic regression by gradient descent, the lecture's way: the loss
L(w, b) = -sum_n log sigmoid(y_n (w . x_n + b)) summed over 100 training
points, w_0 ~ N(0, 1), b_0 = 0, and w <- w - eta grad L.

The engine does it: Linear(1, 1), the Logistic loss with reduction="sum"
(the lecture's sum), and GDTrainer (one exact step per epoch). x is 1-D so
that the parameters (w, b) form a plane where the trajectory can be drawn.
The minimum is found independently by BFGS (scipy) to measure the gap.
"""
from __future__ import annotations

import numpy as np

from ..layers import Linear
from ..losses import Logistic
from ..model import Sequential
from ..train import GDTrainer
from .figures import Figures
from .registry import experiment
from .result import Result, format_table

ETAS = (0.1, 0.125, 0.5)   # 0.1 is the lecture's code; 0.125 and 0.5 its figures
COLOURS = {0.1: "tab:green", 0.125: "tab:blue", 0.5: "tab:red"}


def two_classes(n: int = 100, seed: int = 0):
    """1-D points, y = +-1 at random; x ~ N(y / 2, 1 / 4): overlapping classes, so
    the loss has a finite minimum."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    x = 0.5 * (y + rng.normal(0, 1, n))
    return x.reshape(-1, 1), y, float(rng.normal(0, 1))  # and the lecture's w_0 ~ N(0, 1)


def lecture_loss(x, y, w, b) -> float:
    """The lecture's loss, written as in its code (for the contours and the minimum)."""
    s = y * (x @ np.atleast_1d(w) + b)
    return float(np.logaddexp(0, -s).sum())  # -log sigmoid(s), without overflow


def minimum(x, y):
    """(w*, b*, L*) by BFGS: an independent reference for the gap to the optimum."""
    from scipy.optimize import minimize
    res = minimize(lambda p: lecture_loss(x, y, p[:1], p[1]), np.zeros(2), method="BFGS",
                   options={"gtol": 1e-10})
    return float(res.x[0]), float(res.x[1]), float(res.fun)


def descend(x, y, w0: float, eta: float, iterations: int):
    """(losses, trajectory): L at each iterate before its step, and (w, b) from w_0 on."""
    linear = Linear(1, 1).astype(np.float64)
    model = Sequential(linear).astype(np.float64)
    linear.weight.value[...] = w0
    linear.bias.value[...] = 0.0
    path = [(w0, 0.0)]
    trainer = GDTrainer(model, Logistic(reduction="sum"), lr=eta, batch_size=len(x),
                        callbacks=[lambda t, row: path.append(
                            (float(linear.weight.value[0, 0]), float(linear.bias.value[0])))])
    history = trainer.fit(x, y, epochs=iterations)
    return np.array([row["train_loss"] for row in history.epochs]), np.array(path)


@experiment("logistic-gd",
            "logistic regression by gradient descent, 100 points: loss against iterations "
            "and trajectory in (w, b) for eta = 0.1, 0.125 and 0.5",
            slide="Gradient descent: logistic regression",
            quote="With 100 training points and η = 10⁻¹.")
def run(out_dir=None, fast=False, etas=ETAS, iterations: int = 100) -> Result:
    x, y, w0 = two_classes()
    w_star, b_star, l_star = minimum(x, y)
    rows, numbers, runs = [], {}, {}
    for eta in etas:
        losses, path = descend(x, y, w0, eta, iterations)
        final = lecture_loss(x, y, path[-1, :1], path[-1, 1])
        increases = int(np.sum(np.diff(losses) > 1e-12 * np.abs(losses[:-1]).max()))
        runs[eta] = (losses, path)
        numbers[eta] = {"losses": losses.tolist(), "path": path.tolist(), "final_loss": final,
                        "gap": final - l_star, "increases": increases}
        gap = f"{final - l_star:.2e}" if final - l_star > 1e-10 else "< 1e-10"
        rows.append([eta, f"{losses[0]:.2f}", f"{final:.4f}", gap,
                     increases, f"({path[-1, 0]:.3f}, {path[-1, 1]:.3f})"])
    table = format_table(["eta", "L(w_0, b_0)", f"L after {iterations} steps", "gap to min",
                          "steps where L rose", "(w, b) at the end"], rows)
    table += (f"\nminimum by BFGS: L* = {l_star:.4f} at (w, b) = ({w_star:.3f}, {b_star:.3f});"
              f" start (w_0, b_0) = ({w0:.3f}, 0)")
    figs = Figures(out_dir)
    figs.draw("logistic-gd.png",
              lambda fig, axes: _draw(axes, x, y, runs, (w_star, b_star, l_star)),
              ncols=3, size=(16, 4.8))
    return Result("logistic-gd",
                  "gradient descent with a small eta goes down steadily to the minimum; "
                  "a large eta overshoots and oscillates", table,
                  {"etas": numbers, "minimum": {"w": w_star, "b": b_star, "loss": l_star},
                   "w0": w0}, figs.paths, figs.notes)


def _draw(axes, x, y, runs, optimum):
    w_star, b_star, l_star = optimum
    ax = axes[0]
    floor = 1e-13  # float64 rounding of a loss near 30: below this the gap is noise
    for eta, (losses, _) in runs.items():
        ax.plot(np.arange(len(losses)), np.maximum(losses - l_star, floor),
                color=COLOURS.get(eta), lw=1.2, label=f"η = {eta}")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor)
    ax.set_xlabel("iteration")
    ax.set_ylabel("L(w, b) − L*  (log scale)")
    ax.set_title("Loss against iterations\n(100 points, the lecture's summed loss)")
    ax.legend()
    ax.grid(True, alpha=0.3)
    start = next(iter(runs.values()))[1][0]
    # Middle: around the start and the minimum, where the small steps are seen;
    # right: all of every path, where the large step's jumps are seen.
    near = np.array([start, (w_star, b_star)])
    pad = 0.25 * (near.max(axis=0) - near.min(axis=0)).max() + 0.5
    everything = np.concatenate([path for _, path in runs.values()])
    views = ((axes[1], near.min(axis=0) - pad, near.max(axis=0) + pad,
              "Trajectories in (w, b): near the minimum"),
             (axes[2], everything.min(axis=0) - 1, everything.max(axis=0) + 1,
              "Trajectories in (w, b): all of them"))
    for ax, lo, hi, title in views:
        gw, gb = np.meshgrid(np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120))
        grid_loss = np.array([lecture_loss(x, y, w, b) for w, b in zip(gw.ravel(), gb.ravel())])
        ax.contour(gw, gb, grid_loss.reshape(gw.shape), colors="0.65", linewidths=0.6,
                   levels=np.geomspace(l_star * 1.002, grid_loss.max(), 12))
        for eta, (_, path) in runs.items():
            ax.plot(path[:, 0], path[:, 1], ".-", color=COLOURS.get(eta), lw=0.8, ms=4,
                    label=f"η = {eta}")
        ax.plot([w_star], [b_star], "k*", ms=12, label="minimum (BFGS)")
        ax.plot([start[0]], [start[1]], "ko", ms=5, label="start (w₀, 0)")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_xlabel("w")
        ax.set_ylabel("b")
        ax.set_title(title)
    axes[1].legend(fontsize=8, loc="upper left")
