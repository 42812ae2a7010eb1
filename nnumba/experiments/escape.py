"""SGD and local minima: "The stochastic behavior of this procedure helps evade
local minima."

The loss is gradient-descent's non-convex L(w) (a sharp, shallow local well and a
wide, deep global one), written as a mean over N samples:

    l_n(w) = L(w) + a_n w,   a_n of mean exactly 0 and standard deviation NOISE,

so that (1/N) sum_n l_n = L exactly, and a mini-batch of B samples (drawn without
replacement, a fresh permutation per epoch) steps along L'(w) plus the batch's
mean of a_n: noise of standard deviation NOISE sqrt((N - B) / (B (N - 1))), none
for B = N (gradient descent). From w_0 = 2.5, where gradient descent with
eta = 0.125 settles in the local minimum, every batch size runs the same number of
updates from many seeds; the table gives how many runs end in the global well
(below the barrier between the wells, found by scipy) and the share of updates
spent there. From w_0 = 0, in the global well already, the same noise does not
throw the runs out: the deeper well holds them.
"""
from __future__ import annotations

import numpy as np

from ..layers.validation import check_memory
from .common import Result, experiment, finish, format_table, with_figure
from .descent import minima, nonconvex, nonconvex_gradient

SAMPLES = 100          # N: the per-sample losses
NOISE = 2.0            # the standard deviation of the a_n
ETA = 0.125            # the step of gradient-descent's figures
STARTS = (2.5, 0.0)    # in the local well (GD stays there), in the global one
BATCHES = (1, 2, 5, 10, SAMPLES)
COLOURS = {1: "tab:red", 2: "tab:orange", 5: "tab:green", 10: "tab:blue", SAMPLES: "k"}


def offsets(n: int = SAMPLES, noise: float = NOISE, seed: int = 123) -> np.ndarray:
    """The a_n: standard normal draws, centred and scaled to mean 0 and sd ``noise``."""
    a = np.random.default_rng(seed).standard_normal(n)
    return (a - a.mean()) / a.std() * noise


def sample_losses(w, a: np.ndarray) -> np.ndarray:
    """l_n(w) for every sample (rows) and every w of an array (columns)."""
    w = np.atleast_1d(np.asarray(w, dtype=float))
    return nonconvex(w)[None, :] + a[:, None] * w[None, :]


def batch_noise(b: int, n: int = SAMPLES, noise: float = NOISE) -> float:
    """The standard deviation of a batch's mean of a_n, without replacement."""
    return noise * np.sqrt((n - b) / (b * (n - 1))) if b < n else 0.0


def descend(w0: float, b: int, a: np.ndarray, updates: int, runs: int, seed: int = 0):
    """Mini-batch SGD on mean_n l_n, ``runs`` seeds at once: (w after each update,
    shape (updates + 1, runs), and the batch means of a_n it used, (updates, runs))."""
    n = len(a)
    if n % b:
        raise ValueError(f"the batch size {b} does not divide the {n} samples")
    rng = np.random.default_rng(seed)
    per_epoch = n // b
    epochs = -(-updates // per_epoch)
    means = np.concatenate([
        a[rng.permuted(np.tile(np.arange(n), (runs, 1)), axis=1)]
        .reshape(runs, per_epoch, b).mean(axis=2) for _ in range(epochs)], axis=1)[:, :updates].T
    path = np.empty((updates + 1, runs))
    path[0] = w0
    for t in range(updates):
        path[t + 1] = path[t] - ETA * (nonconvex_gradient(path[t]) + means[t])
    return path, means


@experiment("sgd-local-minima",
            "SGD on a non-convex loss written as a mean over samples: from where gradient "
            "descent settles in a local minimum, small batches escape to the global one",
            slide="Stochastic Gradient descent",
            quote="The stochastic behavior of this procedure helps evade local minima.")
def run(out_dir=None, fast=False, runs: int | None = None, updates: int | None = None) -> Result:
    runs = runs or (40 if fast else 200)
    updates = updates or (1000 if fast else 2000)
    # a path and its batch means at a time, each (updates, runs): refused before either
    check_memory(f"sgd-local-minima's paths for runs={runs}, updates={updates}",
                 4 * 8 * (updates + 1) * runs)
    a = offsets()
    local, best = sorted(minima(nonconvex, -6, 6), key=nonconvex)[::-1]
    barrier = _barrier(best, local)
    rows, numbers, paths = [], {"local": local, "global": best, "barrier": barrier,
                                "runs": runs, "updates": updates, "starts": {}}, {}
    for w0 in STARTS:
        numbers["starts"][w0] = {}
        for b in BATCHES:
            path, means = descend(w0, b, a, updates, runs)
            inside = path[1:] < barrier if best < local else path[1:] > barrier
            entry = {"ended_global": float(np.mean(inside[-1])),
                     "time_global": float(np.mean(inside)),
                     "noise_sd": batch_noise(b), "noise_sd_measured": float(means.std()),
                     "final_w": path[-1].tolist()}
            numbers["starts"][w0][b] = entry
            paths[(w0, b)] = path[:, 0].copy()  # (the figure draws one run of each)
            rows.append([f"{w0:g}", "GD (the whole set)" if b == SAMPLES else b,
                         f"{entry['noise_sd']:.3f}", f"{entry['noise_sd_measured']:.3f}",
                         f"{100 * entry['ended_global']:.0f} %",
                         f"{100 * entry['time_global']:.0f} %"])
    table = format_table(["w_0", "batch", "gradient noise sd", "measured",
                          f"runs ending in the global well (of {runs})",
                          "updates spent there"], rows)
    table += (f"\nl_n(w) = L(w) + a_n w over {SAMPLES} samples (a_n: mean 0, sd {NOISE}), "
              f"eta = {ETA}, {updates} updates per run; minima by scipy: local w = {local:.4f} "
              f"(L = {nonconvex(local):.4f}), global w = {best:.4f} (L = {nonconvex(best):.4f}), "
              f"barrier at w = {barrier:.4f}; noise sd: NOISE sqrt((N-B)/(B(N-1)))")
    escaped = numbers["starts"][STARTS[0]]
    result = Result("sgd-local-minima",
                    f"the noise of small batches evades the local minimum: from w_0 = "
                    f"{STARTS[0]:g}, {100 * escaped[1]['ended_global']:.0f} % of per-sample SGD "
                    f"runs end in the global well, {100 * escaped[SAMPLES]['ended_global']:.0f} % "
                    f"of gradient descent's", table, numbers)
    return with_figure(result, out_dir, _draw, paths, numbers, a, ncols=3, size=(18, 4.8),
                       title="Stochastic gradient descent helps evade local minima")


def _barrier(best: float, local: float) -> float:
    """The maximum of L between the two minima (scipy)."""
    from scipy.optimize import minimize_scalar
    lo, hi = sorted((best, local))
    return float(minimize_scalar(lambda w: -nonconvex(w), bounds=(lo, hi), method="bounded",
                                 options={"xatol": 1e-10}).x)


def _draw(axes, paths, numbers, a):
    w0, runs = STARTS[0], numbers["runs"]
    grid = np.linspace(-4.5, 3.5, 500)
    ax = axes[0]
    ax.plot(grid, nonconvex(grid), color="k", lw=2, label="L(w), the mean of the l_n")
    for n in range(0, len(a), 20):
        ax.plot(grid, sample_losses(grid, a[n:n + 1])[0], color="0.7", lw=0.8,
                label="a few per-sample losses l_n" if n == 0 else None)
    ax.axvline(numbers["barrier"], color="0.4", ls=":", lw=1, label="the barrier")
    finish(ax, "The loss as a mean over samples", legend=8, grid="major",
           ylim=(-3, 1.5), xlabel="w", ylabel="loss")
    ax = axes[1]
    for b in (1, 10, SAMPLES):
        path = paths[(w0, b)]
        ax.plot(np.arange(1, len(path) + 1), path, color=COLOURS[b], lw=0.8,
                label="GD" if b == SAMPLES else f"batch {b}")
    for w, name in ((numbers["local"], "local minimum"), (numbers["global"], "global minimum")):
        ax.axhline(w, color="0.5", ls="--", lw=0.8)
        ax.annotate(name, (1, w), textcoords="offset points", xytext=(4, 3), fontsize=8)
    finish(ax, f"One run per batch size from w₀ = {w0:g}", legend=8, grid="major",
           xscale="log", xlabel="t + 1, t the updates made (log scale)", ylabel="w_t")
    ax = axes[2]
    for start, marker in zip(STARTS, ("o-", "s--")):
        shares = [numbers["starts"][start][b]["ended_global"] for b in BATCHES]
        ax.plot(BATCHES, shares, marker, color="tab:purple" if marker == "o-" else "0.5",
                label=f"from w₀ = {start:g}")
    finish(ax, f"Runs ending in the global well (of {runs})", legend=8, grid="both",
           xscale="log", ylim=(-0.05, 1.05), xlabel="batch size B (log scale; 100: GD)",
           ylabel="share of runs")
