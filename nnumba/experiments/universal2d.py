"""Universal approximation beyond 1-D: the lecture's argument for several inputs, run.

The lecture approximates psi on [0, 1]^D in two steps: a sum of sines,
psi(x) ~ sum_m gamma_m sin(v_m . x + c_m) (Fourier), then each sine by ReLUs,
sin(t) ~ sum_n alpha_n sigma(t - a_n) on [-A, A]. Composed, that is one hidden
layer of K = M N units, x -> omega . sigma(w x + b).

Here psi of two variables is a sum of M = 3 sines, so the first step is exact
and what is measured is the second: each sine by the N-ReLU interpolant of
the 1-D experiment (universal-approximation). The network is built by the
engine (Linear(2, K), ReLU, Linear(K, 1)) and evaluated on a grid of [0, 1]^2.
The lecture's bound, with the interpolant's error at most h^2 / 8 (h the
spacing of the N nodes on [-A, A], |sin''| <= 1), is
max |psi - f| <= sum_m |gamma_m| h^2 / 8: it falls as 1 / N^2.
"""
import numpy as np

from ..model import Sequential
from . import universal
from .common import Result, experiment, finish, format_table, with_figure

# psi(x) = sum_m gamma_m sin(v_m . x + c_m) on [0, 1]^2
GAMMA = np.array([1.0, 0.6, 0.3])
V = np.array([[4.0, 2.0], [-3.0, 5.0], [3.0, 3.0]])
C = np.array([0.0, 1.0, 0.5])
NODES = (3, 5, 9, 17, 33, 65, 129)   # N ReLUs per sine
GRID = 201


def half_width() -> float:
    """A = max over m and x in [0, 1]^2 of |v_m . x + c_m| (at a corner)."""
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    return float(np.max(np.abs(corners @ V.T + C)))


def network(n: int) -> Sequential:
    """x -> omega . sigma(w x + b) with K = M n units: unit (m, k) is the k-th ReLU of
    the interpolant of sin on [-A, A], fed with t = v_m . x + c_m, weighted by gamma_m."""
    w1, b1, alpha = universal.interpolant_units(n, half_width())
    k = len(GAMMA) * n
    return universal.relu_network((w1[None, :, None] * V[:, None, :]).reshape(k, 2),
                                  (w1[None, :] * C[:, None] + b1[None, :]).reshape(k),
                                  (GAMMA[:, None] * alpha[None, :]).reshape(k))


def bound(n: int) -> float:
    h = 2 * half_width() / (n - 1)
    return float(np.sum(np.abs(GAMMA)) * h ** 2 / 8)


@experiment("universal-approximation-2d",
            "a function of two variables by the lecture's construction: sines, each by N "
            "ReLUs, in one hidden layer of K = M N units; the error falls as K grows",
            slide="Universal approximation in several dimensions",
            quote="So we can approximate any continuous function ψ : [0, 1]^D → ℝ with a one "
                  "hidden layer perceptron x ↦ ω · σ(wx + b). A better approximation requires "
                  "a larger hidden layer (larger K).")
def run(out_dir=None, fast=False, nodes=NODES) -> Result:
    g = np.linspace(0, 1, 101 if fast else GRID)
    x = np.column_stack([a.ravel() for a in np.meshgrid(g, g)])
    target = np.sin(x @ V.T + C) @ GAMMA  # psi on the grid
    rows, numbers, fits = [], {}, {}
    for n in nodes:
        model = network(n)
        fit = model.predict(x)[:, 0]
        error = float(np.max(np.abs(fit - target)))
        k = len(GAMMA) * n
        numbers[k] = {"N": n, "parameters": model.num_params(), "max_error": error,
                      "bound": bound(n), "rms_error": float(np.sqrt(np.mean((fit - target) ** 2)))}
        fits[k] = fit
        rows.append([n, k, model.num_params(), f"{error:.2e}", f"{bound(n):.2e}",
                     f"{numbers[k]['rms_error']:.2e}"])
    table = format_table(["N per sine", "K = M N", "parameters", "max |psi - f|",
                          "bound sum|gamma| h^2/8", "RMS error"], rows)
    terms = " + ".join(f"{g:g} sin({v[0]:g} x1 + {v[1]:g} x2 + {c:g})"
                       for g, v, c in zip(GAMMA, V, C))
    table += (f"\npsi(x1, x2) = {terms} on [0, 1]^2 (M = {len(GAMMA)} sines, so the Fourier "
              f"step is exact); A = {half_width():g}; {len(x)} grid points")
    result = Result("universal-approximation-2d",
                    "one hidden layer of K ReLUs approximates a function of two variables, "
                    "ever closer as K grows", table, {"hidden": numbers, "A": half_width()})
    return with_figure(result, out_dir, _draw, target, fits, numbers, len(g), ncols=4,
                       size=(18, 4.4), title="Universal approximation in several dimensions: "
                                             "ψ(x₁, x₂) by one hidden layer of K ReLUs")


def _draw(axes, target, fits, numbers, steps):
    ks = list(numbers)
    small = ks[len(ks) // 2]  # a coarse fit, whose error can still be seen
    error = fits[small] - target
    bound = np.abs(error).max()
    panels = ((target, "ψ, the target", "viridis", target.min(), target.max()),
              (fits[small], f"f with K = {small} units", "viridis", target.min(), target.max()),
              (error, f"f − ψ with K = {small}", "RdBu_r", -bound, bound))
    for ax, (values, title, cmap, vmin, vmax) in zip(axes, panels):
        image = ax.imshow(values.reshape(steps, steps), origin="lower", extent=(0, 1, 0, 1),
                          cmap=cmap, vmin=vmin, vmax=vmax)
        ax.figure.colorbar(image, ax=ax, shrink=0.8)
        finish(ax, title, legend=None, xlabel="x₁", ylabel="x₂")
    ax = axes[3]
    ax.loglog(ks, [numbers[k]["max_error"] for k in ks], "o-", color="tab:red",
              label="max |ψ − f| on the grid")
    ax.loglog(ks, [numbers[k]["bound"] for k in ks], "--", color="0.4", label="the bound Σ|γ| h²/8")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    finish(ax, "Error against the hidden size K", grid="both", xlabel="K (hidden units)",
           ylabel="maximum error over [0, 1]²")
