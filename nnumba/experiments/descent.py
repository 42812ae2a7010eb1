"""Gradient descent, the lecture's step-size figures: eta = 0.125 from two starts w_0,
and eta = 0.5, each run w_{t+1} = w_t - eta L'(w_t) for 100 steps.

Two 1-D losses, side by side:

- non-convex: L(w) = q w^2 - d_1 g(w; mu_1, s_1) - d_2 g(w; mu_2, s_2), g a
  Gaussian bump: a sharp, shallow local minimum and a wide, deep global one.
  With eta = 0.125 the start decides which minimum is reached; from the start
  that ends in the local minimum, eta = 0.5 is too large for its curvature
  (eta L'' > 2 there), is thrown out of it, and ends in the global minimum.
- convex: the logistic regression's loss L(w) = sum_n log(1 + e^{-y_n w x_n})
  over 100 1-D points (no bias), computed by the engine (Linear(1, 1), the
  summed Logistic loss, GDTrainer): one minimum, reached from any start with
  eta = 0.125; with eta = 0.5 the steps overshoot it for ever.

The minima are found independently by scipy, to say where each run ended.

The slide derives the rule from the surrogate L~_{w_t}(w) = L(w_t) + L'(w_t)(w - w_t)
+ (w - w_t)^2 / (2 eta), whose minimum is w_t - eta L'(w_t): for the first
SURROGATE_STEPS steps of every run the surrogate is built from a finite-difference
slope of L and minimised by scipy, and its argmin compared with the step the run
took (drawn as dashed parabolas).
"""
from __future__ import annotations

import numpy as np

from ..layers import Linear
from ..layers.validation import check_memory
from ..model import Sequential
from . import logistic
from .common import Result, experiment, finish, format_table, with_figure

STEPS = 100
# Non-convex loss: q, then (depth, centre, width) of the local and the global wells.
Q, LOCAL, GLOBAL = 0.02, (1.0, 1.5, 0.3), (2.0, -2.0, 1.5)
# (eta, w_0) of the lecture's three figures, for each loss.
RUNS = {"non-convex": ((0.125, 2.5), (0.125, 0.0), (0.5, 2.5)),
        "convex": ((0.125, -2.0), (0.125, 6.0), (0.5, -2.0))}
REACHED = 1e-4   # |w_T - w*| below this: the run ended in the minimum w*
SURROGATE_STEPS = 3  # steps of each run whose surrogate is minimised and drawn


def _bump(w, depth, centre, width):
    return depth * np.exp(-(w - centre) ** 2 / (2 * width ** 2))


def nonconvex(w):
    return Q * w ** 2 - _bump(w, *LOCAL) - _bump(w, *GLOBAL)


def nonconvex_gradient(w):
    return 2 * Q * w + sum(_bump(w, d, c, s) * (w - c) / s ** 2 for d, c, s in (LOCAL, GLOBAL))


def two_classes(n: int = 100, seed: int = 0):
    """1-D points, y = +-1 at random, x ~ N(y / 2, 0.75^2): overlapping classes, so the
    logistic loss has a finite minimum, curved enough there for eta = 0.5 to overshoot."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    return (0.5 * (y + 1.5 * rng.normal(0, 1, n))).reshape(-1, 1), y


def logistic_loss(x, y, w) -> np.ndarray:
    """sum_n log(1 + e^{-y_n w x_n}) for each w of an array (the lecture's loss, b = 0)."""
    w = np.atleast_1d(w)
    return np.logaddexp(0, -y[None, :] * np.outer(w, x[:, 0])).sum(axis=1)


def descend_nonconvex(eta: float, w0: float, steps: int = STEPS) -> np.ndarray:
    path = [w0]
    for _ in range(steps):
        path.append(path[-1] - eta * nonconvex_gradient(path[-1]))
    return np.array(path)


def descend_logistic(x, y, eta: float, w0: float, steps: int = STEPS) -> np.ndarray:
    """w_0, ..., w_T of gradient descent on the summed logistic loss, by the engine."""
    model = Sequential(Linear(1, 1, bias=False)).astype(np.float64)
    model.flat_params[...] = w0
    return logistic.gradient_descent(model, x, y, eta, steps)[1][:, 0]


def surrogate(loss, w_t: float, eta: float):
    """The slide's approximation of L around w_t, L~(w) = L(w_t) + L'(w_t)(w - w_t) +
    (w - w_t)^2 / (2 eta), as a function of an array w; L'(w_t) by central
    differences of ``loss`` (not the gradient the run used)."""
    h = 1e-5 * max(1.0, abs(w_t))
    at = float(np.squeeze(loss(w_t)))
    slope = float(np.squeeze(loss(w_t + h) - loss(w_t - h))) / (2 * h)
    return lambda w: at + slope * (np.asarray(w) - w_t) + (np.asarray(w) - w_t) ** 2 / (2 * eta)


def surrogate_argmin(loss, w_t: float, eta: float) -> float:
    """argmin_w L~_{w_t}(w), found by scipy."""
    from scipy.optimize import minimize_scalar
    return float(minimize_scalar(surrogate(loss, w_t, eta), bracket=(w_t - 1.0, w_t),
                                 tol=1e-12).x)


def minima(loss, lo: float, hi: float) -> list[float]:
    """The local minima of a 1-D loss on [lo, hi]: a grid, then scipy from each dip."""
    from scipy.optimize import minimize_scalar
    grid = np.linspace(lo, hi, 2001)
    values = loss(grid)
    dips = np.flatnonzero((values[1:-1] < values[:-2]) & (values[1:-1] < values[2:])) + 1
    found = [minimize_scalar(loss, bracket=(grid[i - 1], grid[i], grid[i + 1]),
                             tol=1e-12).x for i in dips]
    return [float(np.squeeze(w)) for w in found]


def ending(path: np.ndarray, found: list[float], loss) -> str:
    """Where a run ended: 'the minimum' (the only one), 'the global minimum', 'a local
    minimum', or 'no minimum'."""
    nearest = min(found, key=lambda w: abs(w - path[-1]))
    if abs(nearest - path[-1]) > REACHED:
        return "no minimum"
    if len(found) == 1:
        return "the minimum"
    best = min(found, key=lambda w: float(np.squeeze(loss(w))))
    return "the global minimum" if nearest == best else "a local minimum"


@experiment("gradient-descent",
            "the step-size figures (eta = 0.125 from two starts, eta = 0.5) on a non-convex "
            "loss, where the start and the step decide the minimum, and on the convex "
            "logistic loss, where they cannot",
            slide="Gradient descent",
            quote="This [most of the time] eventually ends up in a local minimum, and the "
                  "choices of w₀ and η are important.")
def run(out_dir=None, fast=False, steps: int = STEPS) -> Result:
    # every run's path goes into the numbers, as a list of floats (~100 bytes a step)
    check_memory(f"gradient-descent's paths for steps={steps}",
                 100 * (steps + 1) * sum(map(len, RUNS.values())))
    x, y = two_classes()
    losses = {"non-convex": nonconvex, "convex": lambda w: logistic_loss(x, y, w)}
    found = {case: minima(loss, -6, 6) for case, loss in losses.items()}
    rows, numbers, paths, gap = [], {}, {}, 0.0
    for case, settings in RUNS.items():
        loss = losses[case]
        numbers[case] = {"minima": found[case], "runs": []}
        for eta, w0 in settings:
            path = (descend_nonconvex(eta, w0, steps) if case == "non-convex"
                    else descend_logistic(x, y, eta, w0, steps))
            values = np.array([float(np.squeeze(loss(w))) for w in path])
            rises = int(np.sum(np.diff(values) > 1e-12 * np.abs(values).max()))
            end = ending(path, found[case], loss)
            argmins = [surrogate_argmin(loss, float(w), eta) for w in path[:SURROGATE_STEPS]]
            numbers[case]["runs"].append({"eta": eta, "w0": w0, "path": path.tolist(),
                                          "final_w": float(path[-1]),
                                          "final_loss": float(values[-1]), "ends": end,
                                          "rises": rises, "surrogate_argmins": argmins})
            gap = max(gap, max(abs(a - w) for a, w in zip(argmins, path[1:])))
            paths[(case, eta, w0)] = (path, values, end)
            rows.append([case, eta, f"{w0:g}", f"{path[-1]:.4f}", f"{values[-1]:.4f}", rises, end])
    table = format_table(["loss", "eta", "w_0", f"w after {steps} steps", "L(w)",
                          "steps where L rose", "ends in"], rows)
    for case, ws in found.items():
        values = ", ".join(f"w = {w:.4f} (L = {float(np.squeeze(losses[case](w))):.4f})"
                           for w in ws)
        table += f"\n{case}: minima by scipy at {values}"
    table += (f"\neach of the first {SURROGATE_STEPS} steps of every run lands on the minimum "
              f"of the surrogate L~ around w_t (scipy's argmin, from a finite-difference "
              f"slope): at most {gap:.1e} apart")
    numbers["surrogate_gap"] = gap
    result = Result("gradient-descent",
                    "gradient descent ends in a local minimum; w_0 and eta decide which one "
                    "where the loss is not convex", table, numbers)
    return with_figure(result, out_dir, _draw, losses, found, paths,
                       nrows=3, ncols=3, size=(15, 12.6),
                       title="Gradient descent: the start w₀ and the step η decide the minimum "
                             "(top, non-convex), or not (middle, convex); each step goes to "
                             "the minimum of the surrogate L̃ (bottom)")


def _draw(axes, losses, found, paths):
    for ax, (case, eta, w0) in zip(axes[6:], SURROGATE_PANELS):
        _draw_surrogates(ax, losses[case], paths[(case, eta, w0)][0], eta, w0, case)
    for ax, ((case, eta, w0), (path, values, end)) in zip(axes, paths.items()):
        loss = losses[case]
        lo, hi = min(path.min(), min(found[case])) - 1, max(path.max(), max(found[case])) + 1
        grid = np.linspace(lo, hi, 600)
        ax.plot(grid, loss(grid), color="0.55", lw=1.5, label="L(w)")
        ax.plot(path, values, "-", color="0.3", lw=0.5)
        ax.scatter(path, values, c=np.arange(len(path)), cmap="viridis_r", s=14, zorder=3,
                   label="w_t, from light (t = 0) to dark")
        ax.plot(path[:1], values[:1], "o", mfc="none", mec="k", ms=10, label=f"w₀ = {w0:g}")
        best = min(found[case], key=lambda w: float(np.squeeze(loss(w))))
        for w in found[case]:
            ax.plot([w], [float(np.squeeze(loss(w)))], "*", ms=12,
                    color="tab:red" if w == best else "tab:orange",
                    label=("the minimum" if len(found[case]) == 1 else "global minimum")
                    if w == best else "local minimum")
        finish(ax, f"{case}: η = {eta:g}, w₀ = {w0:g}: ends in {end}", legend=7, grid="major",
               xlim=(lo, hi), xlabel="w", ylabel="L(w)")


#: the runs whose first steps the figure's bottom row draws with their surrogates
SURROGATE_PANELS = (("non-convex", 0.125, 0.0), ("convex", 0.125, 6.0), ("convex", 0.5, -2.0))


def _draw_surrogates(ax, loss, path, eta, w0, case):
    """The first steps of one run, zoomed in: at each w_t the surrogate L~ (dashed),
    and its minimum, which is where the run goes next."""
    steps = path[:SURROGATE_STEPS + 1]
    parabolas = [surrogate(loss, float(w), eta) for w in steps[:-1]]
    lo, hi = steps.min(), steps.max()
    lo, hi = lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo)
    grid = np.linspace(lo, hi, 400)
    ax.plot(grid, loss(grid), color="0.55", lw=1.5, label="L(w)")
    colours = ("tab:purple", "tab:blue", "tab:cyan")
    for t, (parabola, colour) in enumerate(zip(parabolas, colours)):
        ax.plot(grid, parabola(grid), "--", color=colour, lw=1.2,
                label=f"L̃ around w_{t}: min at w_{t + 1}")
        ax.plot([steps[t + 1]], [float(parabola(steps[t + 1]))], "v", color=colour, ms=8)
        ax.plot([steps[t + 1]] * 2, [float(parabola(steps[t + 1])),
                                     float(np.squeeze(loss(steps[t + 1])))], ":", color=colour)
    values = [float(np.squeeze(loss(w))) for w in steps]
    ax.plot(steps, values, "o", color="k", ms=5, label="w_t on L")
    for t, (w, v) in enumerate(zip(steps, values)):
        ax.annotate(f"w_{t}", (w, v), textcoords="offset points", xytext=(4, 6), fontsize=8)
    bottoms = [float(p(w)) for p, w in zip(parabolas, steps[1:])]
    top, bottom = max(values), min(bottoms + values)
    margin = 0.1 * (top - bottom)
    finish(ax, f"{case}, η = {eta:g}, w₀ = {w0:g}: the first {SURROGATE_STEPS} steps",
           legend=7, grid="major", xlim=(lo, hi), ylim=(bottom - margin, top + margin),
           xlabel="w", ylabel="L(w)")
