"""The activation functions, as the lecture writes and draws them: tanh, ReLU, the
sigmoid of the logistic regression, and the perceptron's threshold.

Each is the engine's layer, run in float64 on a grid of [-4, 4]: its forward
against the lecture's formula, and its backward (the derivative the chain rule
uses) against central finite differences of its forward. The threshold has no
derivative to give: the engine refuses its backward.
"""
from __future__ import annotations

import numpy as np

from ..errors import NoGradientError
from ..layers import ReLU, Sigmoid, Tanh, Threshold
from .common import Result, experiment, finish, format_table, with_figure

# name -> (layer class, the lecture's formula as code, as text)
ACTIVATIONS = {
    "tanh": (Tanh, lambda x: 2 / (1 + np.exp(-2 * x)) - 1, "2 / (1 + e^(-2x)) - 1"),
    "ReLU": (ReLU, lambda x: np.maximum(0, x), "max(0, x)"),
    "sigmoid": (Sigmoid, lambda x: 1 / (1 + np.exp(-x)), "1 / (1 + e^(-x))"),
    "threshold": (Threshold, lambda x: np.where(x >= 0, 1.0, -1.0), "1 if x >= 0, else -1"),
}
STEP = 1e-6  # of the finite differences


def forward(cls, x: np.ndarray) -> np.ndarray:
    return cls().astype(np.float64).forward(x).copy()


def derivative(cls, x: np.ndarray) -> np.ndarray | None:
    """sigma'(x) from the layer's backward (dl/dy = 1), or None where it has none."""
    layer = cls().astype(np.float64)
    layer.forward(x)
    try:
        return layer.backward(np.ones_like(x)).copy()
    except NoGradientError:
        return None


@experiment("activations",
            "tanh, ReLU, sigmoid and the threshold: the engine's layers against the "
            "lecture's formulas, their derivatives against finite differences, plotted",
            slide="Activation functions",
            quote="The two classical activation functions are the hyperbolic tangent "
                  "x ↦ 2/(1 + e^(−2x)) − 1 and the rectified linear unit (ReLU) x ↦ max(0, x).")
def run(out_dir=None, fast=False) -> Result:
    x = np.linspace(-4, 4, 801)
    # Finite differences straddle no kink: points within 2 steps of 0 are left out.
    smooth = np.abs(x) > 2 * STEP
    rows, numbers, curves = [], {}, {}
    for name, (cls, formula, text) in ACTIVATIONS.items():
        y, dy = forward(cls, x), derivative(cls, x)
        value_error = float(np.max(np.abs(y - formula(x))))
        entry = {"formula": text, "max_error_to_formula": value_error,
                 "min": float(y.min()), "max": float(y.max()), "has_derivative": dy is not None}
        if dy is not None:
            fd = (forward(cls, x + STEP) - forward(cls, x - STEP)) / (2 * STEP)
            entry["max_error_to_finite_differences"] = float(np.max(np.abs(dy - fd)[smooth]))
        numbers[name] = entry
        curves[name] = (y, dy)
        rows.append([name, text, f"[{y.min():g}, {y.max():g}]", f"{value_error:.1e}",
                     "none: no gradient" if dy is None else
                     f"{entry['max_error_to_finite_differences']:.1e}"])
    table = format_table(["sigma", "the lecture's formula", "range on [-4, 4]",
                          "max |layer - formula|", "max |backward - finite diff.|"], rows)
    table += (f"\n{len(x)} points of [-4, 4] in float64; central differences with step "
              f"{STEP:g}, away from the kink at 0")
    result = Result("activations", "tanh and ReLU, the two classical activation functions, "
                                   "with the sigmoid and the threshold: the lecture's formulas",
                    table, numbers)
    return with_figure(result, out_dir, _draw, x, curves, ncols=4,
                       size=(16, 4), title="Activation functions, as the engine computes them, "
                                           "with their derivatives")


def _draw(axes, x, curves):
    for ax, (name, (y, dy)) in zip(axes, curves.items()):
        formula = ACTIVATIONS[name][2]
        if name == "threshold":  # a jump, not a steep line: draw the two sides apart
            for side in (x < 0, x >= 0):
                ax.plot(x[side], y[side], color="tab:blue", lw=2,
                        label=f"σ(x) = {formula}" if side[-1] else None)
            ax.plot([0], [1], "o", color="tab:blue")
            ax.plot([0], [-1], "o", mfc="w", color="tab:blue")
        else:
            ax.plot(x, y, color="tab:blue", lw=2, label=f"σ(x) = {formula}")
        if dy is not None:
            ax.plot(x, dy, "--", color="tab:red", lw=1.3, label="σ'(x), the layer's backward")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        finish(ax, name if dy is not None else f"{name} (no derivative)", legend=7,
               loc="upper left", grid="major", ylim=(-1.3, 1.3 if name != "ReLU" else 4.2),
               xlabel="x", ylabel="σ(x)" if dy is None else "σ(x) and σ'(x)")
