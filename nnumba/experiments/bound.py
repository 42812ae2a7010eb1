"""The perceptron's convergence bound: at most 4 R^2 / gamma^2 updates.

The data are built with a known separating unit vector w* and margin gamma:
y_n (x_n . w*) >= gamma / 2 for every sample, inside the unit ball. The
trainer adds the bias as a weight on a constant input 1, so the bound is
stated for the augmented samples (x_n, 1): R = max ||(x_n, 1)||, and
(w*, 0) keeps the same margin. gamma is measured on the sample drawn
(2 min y_n x_n . w*, at least the gamma asked for).

"The bound does not change if the population is scaled": it holds for the
perceptron of the proof, without a bias (the data are separable through the
origin), whose updates w_k scale with the samples, so k and 4 R^2 / gamma^2 do
not change. With the constant input 1 appended, scaling moves R and gamma
differently, and k with them: SCALES shows both on one data set.
"""
from __future__ import annotations

import numpy as np

from ..layers.validation import number
from ..train import train_perceptron
from .common import Result, experiment, finish, format_table, with_figure

MARGINS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8)
#: the factors the population is scaled by, and the margin of the data set scaled
SCALES, SCALED_MARGIN = (0.01, 0.1, 1.0, 10.0, 100.0), 0.1
#: the largest margin taken: 0.2 % of the unit ball of R^5 lies past its slab
MAX_MARGIN = 1.8


def separable_data(gamma: float, n: int = 200, dim: int = 5, seed: int = 0):
    """n points uniform in the unit ball of R^dim, kept only outside the slab
    |x . w*| < gamma / 2, labelled by the side of w* they fall on."""
    rng = np.random.default_rng(seed)
    w_star = rng.normal(size=dim)
    w_star /= np.linalg.norm(w_star)
    kept, count = [], 0
    while count < n:
        z = rng.normal(size=(4 * n, dim))
        z *= (rng.random((4 * n, 1)) ** (1 / dim)) / np.linalg.norm(z, axis=1, keepdims=True)
        z = z[np.abs(z @ w_star) >= gamma / 2]
        kept.append(z)
        count += len(z)
    x = np.concatenate(kept)[:n]
    return x, np.where(x @ w_star > 0, 1, -1), w_star


def bound_for(x, y, w_star, bias: bool = True) -> tuple[float, float, int]:
    """(R, gamma, floor(4 R^2 / gamma^2)) for the samples, with the bias input appended
    if ``bias``."""
    radius = float(np.sqrt(np.max(np.einsum("nd,nd->n", x, x)) + float(bias)))
    gamma = float(2 * np.min(y * (x @ w_star)))
    return radius, gamma, int(np.floor(4 * radius ** 2 / gamma ** 2))


@experiment("perceptron-bound",
            "convergence bound: the number of updates k against floor(4 R^2 / gamma^2) on "
            "separable data, for several margins gamma",
            slide="The perceptron: convergence",
            quote="No misclassified sample can remain after ⌊4R²/γ²⌋ iterations.")
def run(out_dir=None, fast=False, margins=MARGINS, seeds: int = 5) -> Result:
    # fast runs it all (a second): fewer points and seeds made its means non-monotone in
    # the margin, against the slide's "the larger the margin, the more quickly"
    n = 200
    if len(margins) == 0:  # (its table would divide by the number of margins)
        raise ValueError("margins must name at least one margin")
    for gamma in margins:  # else separable_data draws for ever (no sample past 2: past
        # MAX_MARGIN the points of the unit ball outside the slab grow too rare)
        number("perceptron-bound", "each margin", gamma, None, MAX_MARGIN, above=0)
    rows, records = [], []
    for gamma in margins:
        for seed in range(seeds):
            x, y, w_star = separable_data(gamma, n=n, seed=seed)
            radius, measured, bound = bound_for(x, y, w_star)
            # The bound caps the updates, so bound + 1 epochs are always enough.
            result = train_perceptron(x, y, max_epochs=bound + 1)
            records.append({"gamma": gamma, "seed": seed, "R": radius,
                            "measured_gamma": measured, "bound": bound,
                            "updates": result.updates, "converged": result.converged})
        group = [r for r in records if r["gamma"] == gamma]
        ks = [r["updates"] for r in group]
        rows.append([f"{gamma:g}", f"{min(r['measured_gamma'] for r in group):.3f}",
                     f"{max(r['R'] for r in group):.3f}", min(r["bound"] for r in group),
                     max(ks), f"{np.mean(ks):.1f}",
                     "yes" if all(r["updates"] <= r["bound"] for r in group) else "NO"])
    table = format_table(["gamma asked", "gamma measured (min)", "R (max)", "bound (min)",
                          "k (max)", "k (mean)", "k <= bound"], rows)
    table += f"\n{len(records) // len(margins)} data sets of {n} points in R^5 per margin"
    scaled = scaling(n)
    table += "\n\n" + _scale_table(scaled)
    holds = all(r["updates"] <= r["bound"] and r["converged"] for r in records)
    result = Result("perceptron-bound",
                    "no misclassified sample remains after floor(4 R^2 / gamma^2) updates",
                    table, {"holds": holds, "runs": records, "scaled": scaled})
    return with_figure(result, out_dir, lambda axes: _draw(axes[0], records, margins),
                       title="The perceptron: convergence within ⌊4R²/γ²⌋ updates")


def scaling(n: int, seed: int = 0) -> list[dict]:
    """One data set of margin SCALED_MARGIN scaled by each of SCALES, trained with and
    without the bias: R, gamma, the bound and the updates k of each."""
    x, y, w_star = separable_data(SCALED_MARGIN, n=n, seed=seed)
    rows = []
    for bias in (False, True):
        for c in SCALES:
            radius, gamma, bound = bound_for(c * x, y, w_star, bias)
            result = train_perceptron(c * x, y, max_epochs=bound + 1, bias=bias)
            rows.append({"bias": bias, "scale": c, "R": radius, "gamma": gamma, "bound": bound,
                         "updates": result.updates, "converged": result.converged})
    return rows


def _scale_table(rows) -> str:
    body = [["with the bias input 1" if r["bias"] else "no bias (the proof's)", f"{r['scale']:g}",
             f"{r['R']:.4g}", f"{r['gamma']:.4g}", r["bound"], r["updates"]] for r in rows]
    return (f"the population scaled (one data set, margin {SCALED_MARGIN:g} before scaling)\n" +
            format_table(["perceptron", "scale", "R", "gamma", "bound", "k"], body))


def _draw(ax, records, margins):
    gammas = np.array([r["measured_gamma"] for r in records])
    ax.scatter(gammas, [r["updates"] for r in records], s=22, color="tab:blue",
               label="updates k of the perceptron (one point per data set)", zorder=3)
    ax.scatter(gammas, [r["bound"] for r in records], s=22, marker="^", color="tab:red",
               label="bound floor(4 R² / γ²) of that data set", zorder=3)
    grid = np.geomspace(gammas.min(), gammas.max(), 100)
    radius = max(r["R"] for r in records)
    ax.plot(grid, 4 * radius ** 2 / grid ** 2, color="tab:red", lw=1, alpha=0.6,
            label=f"4 R² / γ² for R = {radius:.2f}")
    ax.set(xscale="log", yscale="log", xlabel="margin γ (measured on the data set)",
           ylabel="number of updates")
    ax.set_xticks(list(margins), [f"{g:g}" for g in margins])
    ax.xaxis.set_minor_formatter("")  # the log axis' own minor labels overlap
    finish(ax, "Updates k never exceed 4R²/γ²", grid="both")
