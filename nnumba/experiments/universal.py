"""Universal approximation: sin on [-A, A] by x -> omega . sigma(w x + b), sigma = ReLU.

The network is Linear(1, K), ReLU, Linear(K, 1) without bias: exactly the
lecture's one-hidden-layer form. It is trained by gradient descent on the MSE
over evenly spaced samples. The reference is the lecture's own construction,
sum_n alpha_n sigma(x - a_n): with K ReLUs it is the piecewise-linear
interpolant of sin at K evenly spaced nodes (the tests check it against numpy's
interp), so it shows what K units can do without any training.
"""
from __future__ import annotations

import numpy as np

from ..layers import Linear, ReLU
from ..losses import MSE
from ..model import Sequential
from ..train import GDTrainer
from .common import Result, experiment, finish, format_table, with_figure

HIDDEN = (2, 4, 8, 16, 32)
HALF_WIDTH = np.pi            # A: sin on [-pi, pi], one period
COLOURS = ("tab:purple", "tab:blue", "tab:green", "tab:orange", "tab:red", "tab:brown")


def relu_network(w, b, omega) -> Sequential:
    """x -> omega . relu(w x + b), in float64, with these parameters: w of shape (K, D),
    b and omega of K."""
    k, inputs = w.shape
    model = Sequential(Linear(inputs, k), ReLU(), Linear(k, 1, bias=False)).astype(np.float64)
    model.layers[0].weight.value[...] = w
    model.layers[0].bias.value[...] = b
    model.layers[2].weight.value[0] = omega
    return model


def interpolant_units(k: int, a: float = HALF_WIDTH):
    """(w, b, omega) of the lecture's construction, sum_n alpha_n sigma(x - a_n): K ReLUs
    sigma(x - a_n) (every w_n = 1) whose sum weighted by omega is, on [-A, A], the
    piecewise-linear interpolant of sin at K evenly spaced nodes t_0..t_{K-1}.

    The units sit at a_0 = t_0 - 1 and at t_0..t_{K-2}: on [-A, A] the first two
    differ by the constant 1, which carries sin(t_0), the one at t_0 carries the first
    slope, and each interior node the change of slope there."""
    if k < 2:
        raise ValueError(f"the interpolant needs K >= 2 nodes, got {k}")
    nodes = np.linspace(-a, a, k)
    values = np.sin(nodes)
    slopes = np.diff(values) / np.diff(nodes)
    w = np.ones(k)
    b = -np.concatenate([[nodes[0] - 1.0], nodes[:-1]])
    omega = np.empty(k)
    omega[0] = values[0]
    omega[1] = slopes[0] - values[0]
    omega[2:] = np.diff(slopes)
    return w, b, omega


def interpolant_network(k: int, a: float = HALF_WIDTH) -> Sequential:
    """The construction of interpolant_units as the network x -> omega . sigma(w x + b)."""
    w, b, omega = interpolant_units(k, a)
    return relu_network(w[:, None], b, omega)


def train(k: int, epochs: int, a: float = HALF_WIDTH, samples: int = 201, seed: int = 0):
    """(model, final train MSE): K ReLUs with knots evenly spread over [-A, A] and random
    orientations, omega = 0, then gradient descent with momentum on all of w, b, omega."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-a, a, samples)[:, None]
    w = rng.choice([-1.0, 1.0], k)
    knots = -a + (np.arange(k) + 0.5) * 2 * a / k
    model = relu_network(w[:, None], -w * knots, np.zeros(k))
    # The MSE's curvature in omega grows with K (K correlated features): the step shrinks as 1/K.
    trainer = GDTrainer(model, MSE(), lr=0.2 / k, momentum=0.9, batch_size=samples)
    return model, trainer.fit(x, np.sin(x), epochs=epochs).last("train_loss")


def max_error(model, grid) -> float:
    return float(np.max(np.abs(model.predict(grid[:, None])[:, 0] - np.sin(grid))))


@experiment("universal-approximation",
            "sin on [-pi, pi] by a one-hidden-layer ReLU network omega . sigma(w x + b) "
            "trained by gradient descent: the fits and the maximum error against K",
            slide="Universal approximation",
            quote="We can approximate any ψ ∈ C([a, b], ℝ) with a linear combination of "
                  "translated/scaled ReLU functions.")
def run(out_dir=None, fast=False, hidden=HIDDEN, epochs: int | None = None) -> Result:
    epochs = epochs or (4000 if fast else 20000)
    grid = np.linspace(-HALF_WIDTH, HALF_WIDTH, 4001)
    rows, numbers, fits = [], {}, {}
    for k in hidden:
        model, mse = train(k, epochs)
        error = max_error(model, grid)
        reference = max_error(interpolant_network(k), grid)
        numbers[k] = {"parameters": model.num_params(), "train_mse": mse, "max_error": error,
                      "interpolant_max_error": reference}
        fits[k] = model.predict(grid[:, None])[:, 0]
        rows.append([k, model.num_params(), f"{mse:.2e}", f"{error:.4f}", f"{reference:.4f}"])
    table = format_table(["K", "parameters", "train MSE", "max |f - sin| (GD)",
                          "max error of K-node interpolant"], rows)
    table += (f"\n{epochs} gradient-descent steps (momentum 0.9, lr 0.2 / K) on 201 samples of "
              f"sin on [-pi, pi]; the interpolant is the lecture's construction sum alpha_n "
              f"sigma(x - a_n) with K ReLUs")
    result = Result("universal-approximation",
                    "a one-hidden-layer ReLU network approximates sin ever closer as K grows",
                    table, {"hidden": numbers, "epochs": epochs, "A": HALF_WIDTH})
    columns = (len(hidden) + 2) // 2
    return with_figure(result, out_dir, _draw, grid, fits, numbers,
                       nrows=2, ncols=columns, size=(4.2 * columns, 7.6),
                       title="Universal approximation: sin on [−π, π] by K ReLUs, ω·σ(wx + b) "
                             "trained by gradient descent")


def _draw(axes, grid, fits, numbers):
    # One panel per K, sin drawn over the fit: each fit is seen against the target.
    for ax, (k, fit), colour in zip(axes, fits.items(), COLOURS):
        ax.plot(grid, fit, color=colour, lw=2.2, label=f"fit, K = {k}")
        ax.plot(grid, np.sin(grid), "k--", lw=1, label="sin x, the target")
        finish(ax, f"K = {k}: max error {numbers[k]['max_error']:.3f}", legend=7,
               loc="upper left", xlabel="x", ylabel="ω·σ(wx + b)")
    ax = axes[len(fits)]
    ks = list(numbers)
    ax.loglog(ks, [numbers[k]["max_error"] for k in ks], "o-", color="tab:red",
              label="trained by gradient descent")
    ax.loglog(ks, [numbers[k]["interpolant_max_error"] for k in ks], "s--", color="0.4",
              label="interpolant at K nodes (construction)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    finish(ax, "Maximum error against the hidden size K", grid="both",
           xlabel="K (hidden units)", ylabel="max over [−π, π] of |f(x) − sin x|")
