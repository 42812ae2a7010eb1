"""Logistic regression by gradient descent, the lecture's listing: 100 training points
in 2-D, the loss L(w, b) = -sum_n log sigmoid(y_n (w . x_n + b)), w_0 ~ N(0, 1),
b_0 = 0, eta = 0.1, and w <- w - eta grad L.

The engine does it: Linear(2, 1), the Logistic loss with reduction="sum" (the
lecture's sum), and GDTrainer (one exact step per epoch); the tests check it
against the lecture's own numpy code, step for step. The minimum is found
independently by BFGS (scipy) to measure the gap, and the figure draws the
decision boundary w . x + b = 0 over the points, as the lecture's does.
(The step-size figures, eta = 0.125 and 0.5, are the gradient-descent
experiment's.)
"""
import numpy as np

from ..layers import Linear
from ..losses import Logistic
from ..model import Sequential
from ..train import GDTrainer
from .common import Result, experiment, finish, format_table, label_scatter, percent, with_figure

ETA = 0.1            # the lecture's eta = 1e-1
ITERATIONS = 300
SHOWN = (0, 1, 3, 10, 30)  # iterations whose boundary the figure draws, and the last
FLOOR = 1e-10  # float64 rounding of a summed loss near 30: a smaller gap is noise


def two_classes(n: int = 100, seed: int = 0):
    """(x, y, w_0): 2-D points, y = +-1 at random, x ~ N(y (0.5, 0.3), 0.45^2 I): two
    overlapping clouds, so the loss has a finite minimum (which eta = 0.1 reaches within
    a few hundred steps); and the lecture's w_0 ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    x = y[:, None] * np.array([0.5, 0.3]) + rng.normal(0, 0.45, (n, 2))
    return x, y, rng.normal(0, 1, 2)


def lecture_loss(x, y, w, b) -> float:
    """The lecture's loss, -sum log sigmoid(y (x.w + b)), without overflow."""
    return float(np.logaddexp(0, -y * (x @ w + b)).sum())


def minimum(x, y):
    """(w*, b*, L*) by BFGS: an independent reference for the gap to the optimum."""
    from scipy.optimize import minimize
    res = minimize(lambda p: lecture_loss(x, y, p[:-1], p[-1]), np.zeros(x.shape[1] + 1),
                   method="BFGS", options={"gtol": 1e-10})
    return res.x[:-1], float(res.x[-1]), float(res.fun)


def descend(x, y, w0, eta: float = ETA, iterations: int = ITERATIONS):
    """(losses, path): L at each iterate before its step, and (w, b) from (w_0, 0) on,
    one row per iterate."""
    model = Sequential(Linear(x.shape[1], 1)).astype(np.float64)
    model.flat_params[...] = [*w0, 0.0]  # w, then b
    return gradient_descent(model, x, y, eta, iterations)


def gradient_descent(model, x, y, eta: float, iterations: int):
    """(losses, path) of gradient descent on the summed logistic loss (the lecture's)
    from the model's parameters: L at each iterate before its step, and the parameters
    (model.flat_params) from the start on, one row per iterate."""
    path = [model.flat_params.copy()]
    trainer = GDTrainer(model, Logistic(reduction="sum"), lr=eta, batch_size=len(x),
                        callbacks=[lambda *_: path.append(model.flat_params.copy())])
    history = trainer.fit(x, y, epochs=iterations)
    return np.array([row["train_loss"] for row in history.epochs]), np.array(path)


@experiment("logistic-gd",
            "the lecture's logistic regression listing: gradient descent with eta = 0.1 on "
            "100 points in 2-D; the loss against iterations and the decision boundary",
            slide="Gradient descent: logistic regression",
            quote="With 100 training points and η = 10⁻¹.")
def run(out_dir=None, fast=False, eta: float = ETA, iterations: int = ITERATIONS) -> Result:
    x, y, w0 = two_classes()
    w_star, b_star, l_star = minimum(x, y)
    losses, path = descend(x, y, w0, eta, iterations)
    w, b = path[-1, :-1], path[-1, -1]
    final = lecture_loss(x, y, w, b)
    rises = int(np.sum(np.diff(losses) > 1e-12 * np.abs(losses).max()))
    gap = (f"{final - l_star:.2e}" if abs(final - l_star) > FLOOR
           else f"below {FLOOR:g} (float64 rounding)")
    error = float(np.mean(np.where(x @ w + b >= 0, 1, -1) != y))
    shown = [k for k in SHOWN if k < iterations] + [iterations]
    rows = [[k, f"{losses[k] if k < iterations else final:.4f}",
             f"({path[k, 0]:.3f}, {path[k, 1]:.3f})", f"{path[k, 2]:.3f}",
             percent(np.mean(np.where(x @ path[k, :-1] + path[k, -1] >= 0, 1, -1) != y))]
            for k in shown]
    table = format_table(["iteration", "L(w, b)", "w", "b", "train error"], rows)
    table += (f"\nminimum by BFGS: L* = {l_star:.4f} at w = ({w_star[0]:.3f}, {w_star[1]:.3f}),"
              f" b = {b_star:.3f}; gap after {iterations} steps: {gap}; "
              f"steps where L rose: {rises}\n{len(x)} points, eta = {eta:g}, w_0 ~ N(0, 1) "
              f"drawn as ({w0[0]:.3f}, {w0[1]:.3f}), b_0 = 0")
    numbers = {"losses": losses.tolist(), "path": path.tolist(), "final_loss": final,
               "gap": final - l_star, "rises": rises, "train_error": error, "eta": eta,
               "minimum": {"w": w_star.tolist(), "b": b_star, "loss": l_star},
               "w0": w0.tolist()}
    result = Result("logistic-gd",
                    "gradient descent minimises the logistic loss, which has no analytic "
                    "minimum: the boundary settles where the two classes meet", table, numbers)
    return with_figure(result, out_dir, _draw, x, y, losses, path, shown, l_star, eta, ncols=2,
                       size=(12, 5), title=f"Gradient descent: logistic regression, "
                                           f"{len(x)} training points, η = {eta:g}")


def _draw(axes, x, y, losses, path, shown, l_star, eta):
    ax = axes[0]
    ax.plot(np.arange(len(losses)), losses, color="tab:blue", lw=1.5,
            label=f"L(w_t, b_t), η = {eta:g}")
    ax.plot(np.arange(len(losses)), np.maximum(losses - l_star, FLOOR), color="tab:red",
            lw=1.5, label=f"L(w_t, b_t) − L*, the gap to the minimum (≥ {FLOOR:g})")
    ax.axhline(l_star, color="k", ls="--", lw=1, label=f"minimum L* = {l_star:.3f} (BFGS)")
    finish(ax, "Loss against iterations", grid="both", yscale="log", xlabel="iteration t",
           ylabel="summed loss (log scale)")
    ax = axes[1]
    lo, hi = x.min(axis=0) - 0.3, x.max(axis=0) + 0.3
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    w, b = path[-1, :-1], path[-1, -1]
    prob = 1 / (1 + np.exp(-(np.column_stack([gx.ravel(), gy.ravel()]) @ w + b)))
    ax.contourf(gx, gy, prob.reshape(gx.shape), levels=np.linspace(0, 1, 11), cmap="RdBu_r",
                alpha=0.25)
    u = np.linspace(lo[0], hi[0], 2)
    for k, grey in zip(shown, np.linspace(0.75, 0.0, len(shown))):
        wk, bk = path[k, :-1], path[k, -1]
        if abs(wk[1]) > 1e-12:
            ax.plot(u, -(wk[0] * u + bk) / wk[1], color=str(grey), lw=2 if k == shown[-1] else 1,
                    label=f"w·x + b = 0 at t = {k}")
    label_scatter(ax, x, y)
    finish(ax, "The decision boundary, from light (start) to dark (end);\n"
               "shading: P(Y = 1 | x) = σ(w·x + b) at the end", legend=7, loc="lower right",
           xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel="x₁", ylabel="x₂")
