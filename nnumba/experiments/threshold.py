"""McCulloch and Pitts' threshold logic unit: and, or, not with the lecture's weights."""
from __future__ import annotations

import itertools

import numpy as np

from ..layers import Linear, Threshold
from ..model import Sequential
from .common import (NEGATIVE, POSITIVE, Result, experiment, finish, format_table, network,
                     with_figure)

# The lecture's units f(x) = 1{w sum_i x_i + b >= 0}: (w, b, number of inputs).
UNITS = {"or": (1.0, -0.5, 2), "and": (1.0, -1.5, 2), "not": (-1.0, 0.5, 1)}
U, V = (np.array(c) for c in zip(*itertools.product((0, 1), repeat=2)))  # every input pair


def unit(name: str) -> Sequential:
    """The unit as a model: Linear with every weight w and bias b, then the threshold."""
    w, b, inputs = UNITS[name]
    linear = Linear(inputs, 1)
    linear.weight.value[...] = w
    linear.bias.value[...] = b
    return Sequential(linear, Threshold())


def fire(model: Sequential, *inputs) -> np.ndarray:
    """Boolean outputs in {0, 1}: the engine's threshold gives sigma in {-1, +1}."""
    x = np.column_stack(inputs).astype(np.float32)
    return ((model.forward(x)[:, 0] + 1) / 2).astype(int)


def xor(units: dict, u, v):
    """xor = and(or(u, v), not(and(u, v))), unit by unit: (outputs, the units fired):
    the lecture's or, and and not, in three layers (a nand unit, w = -1 and b = 1.5,
    would make it two: and(or(u, v), nand(u, v)))."""
    fired = []

    def apply(name, *inputs):
        fired.append(name)
        return fire(units[name], *inputs)
    either, both = apply("or", u, v), apply("and", u, v)
    return apply("and", either, apply("not", both)), fired


@experiment("threshold-logic", "the threshold unit computes and / or / not with the "
                               "lecture's weights (and xor from them), over all inputs",
            slide="Networks of threshold logic units",
            quote="Hence, any Boolean function can be build with such units.")
def run(out_dir=None, fast=False) -> Result:
    units = {name: unit(name) for name in UNITS}
    out = {name: fire(units[name], U, V) for name in ("or", "and")}
    out["not u"] = fire(units["not"], U)
    # "Any Boolean function can be built with such units": xor from four of them.
    out["xor"], xor_units = xor(units, U, V)
    truth = {"or": U | V, "and": U & V, "not u": 1 - U, "xor": U ^ V}
    rows = [[U[i], V[i]] + [out[k][i] for k in truth] for i in range(len(U))]
    correct = {k: bool(np.array_equal(out[k], truth[k])) for k in truth}
    table = format_table(["u", "v", "or", "and", "not u", f"xor ({len(xor_units)} units)"], rows)
    weights = ", ".join(f"{k}: w = {w:g}, b = {b:g}" for k, (w, b, _) in UNITS.items())
    table += (f"\n{weights}\nxor = and(or(u, v), not(and(u, v))): the units "
              f"{', '.join(xor_units)}\nall outputs right: {all(correct.values())}")
    result = Result("threshold-logic",
                    "f(x) = 1{w sum x_i + b >= 0} computes or, and, not; hence any Boolean "
                    "function", table,
                    {"correct": correct, "outputs": {k: o.tolist() for k, o in out.items()},
                     "xor_units": xor_units})
    return with_figure(result, out_dir, _draw, ncols=4, size=(16, 4),
                       title="Networks of threshold logic units: or, and, not with the "
                             "lecture's weights (inputs coloured by output)")


def _draw(axes):
    """The neuron as the slide draws it, then each unit's inputs coloured by its output,
    and its threshold w sum x_i + b = 0."""
    network(axes[0], (4, 1), inputs=["x₁", "x₂", "x₃", "1"], outputs=["σ(w · x + b)"],
            edge_labels=["w₁", "w₂", "w₃", "b"])
    axes[0].set_title("The neuron f(x) = σ(w · x + b)", fontsize=10)
    for ax, name in zip(axes[1:], UNITS):
        w, b, inputs = UNITS[name]
        if inputs == 2:
            u, v = U, V
            fired = fire(unit(name), u, v)
            line = np.linspace(-0.5, 1.5, 2)
            ax.plot(line, -b / w - line, "k-", lw=1.2, label=f"u + v = {-b / w:g}")
            ax.set_ylabel("v")
        else:
            u, v = np.array([0, 1]), np.zeros(2)
            fired = fire(unit(name), u)
            ax.axvline(-b / w, color="k", lw=1.2, label=f"u = {-b / w:g}")
            ax.set_yticks([])
            ax.set_ylabel("(a single input)")
        for value, colour in ((0, NEGATIVE), (1, POSITIVE)):
            keep = fired == value
            ax.scatter(u[keep], v[keep], s=120, c=colour, edgecolors="k", zorder=3,
                       label=f"output {value}")
        finish(ax, loc="upper left", xlim=(-0.5, 1.5), ylim=(-0.5, 1.5), aspect="equal",
               xlabel="u", title=f"{name}: w = {w:g}, b = {b:g}")
