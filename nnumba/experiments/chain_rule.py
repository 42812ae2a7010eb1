"""The chain rule: the Jacobian of a composition is the product of the Jacobians.

The layers f_l(x) = tanh(w^(l) x + b^(l)) of the backprop experiment's MLP 4-5-3-2.
Each layer's Jacobian at the point the forward pass reaches comes from the engine:
row k is the backward pass of a one-hot gradient on output unit k.  The Jacobian
of the whole composition comes from central finite differences of the forward pass.

In the lecture's own layout of [dpsi/dx] (a row per output, M x N) the product runs
from the last layer to the first, J_{f_3} J_{f_2} J_{f_1}.  The slide writes
J_{f_1} J_{f_2} J_{f_3}: the order for the transposes (a column per output, the
layout of gradients), and a product that is not even defined otherwise where the
widths differ.
"""
from __future__ import annotations

import numpy as np

from .backprop import STEP, WIDTHS, mlp, sample
from .common import Result, experiment, format_table, with_figure


def layer_jacobians(model, x) -> list:
    """[J_{f_l} at the input layer l gets], each (outputs, inputs), by the engine's
    backward passes; layer l is model.layers[2l - 2 : 2l] (a Linear, then tanh)."""
    jacobians, h = [], x
    for linear, sigma in zip(model.layers[::2], model.layers[1::2]):
        for layer in (linear, sigma):
            layer.set_flags(needs_input_grad=True)
        y = sigma.forward(linear.forward(h)).copy()
        rows = []
        for k in range(y.shape[1]):
            one_hot = np.zeros_like(y)
            one_hot[0, k] = 1.0
            rows.append(linear.backward(sigma.backward(one_hot))[0].copy())
        jacobians.append(np.array(rows))
        h = y
    return jacobians


def composition_jacobian(model, x, step: float = STEP) -> np.ndarray:
    """J of x -> f_L(... f_1(x)) by central differences, (outputs, inputs)."""
    def f(v):
        for layer in model.layers:
            v = layer.forward(v)
        return np.array(v[0])
    columns = []
    for j in range(x.shape[1]):
        e = np.zeros_like(x)
        e[0, j] = step
        columns.append((f(x + e) - f(x - e)) / (2 * step))
    return np.stack(columns, axis=1)


def _relative(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@experiment("chain-rule",
            "the Jacobian of the MLP 4-5-3-2 against the product of its layers' Jacobians "
            "(each from the engine's backward passes), in the order the lecture's notation "
            "needs",
            slide="Back-propagation: the chain rule",
            quote="The linear approximation of a composition of mappings is the product of "
                  "their individual linear approximations.")
def run(out_dir=None, fast=False) -> Result:
    model = mlp()
    x, _ = sample()
    jacobians = layer_jacobians(model, x)
    whole = composition_jacobian(model, x)
    product = jacobians[2] @ jacobians[1] @ jacobians[0]
    transposes = jacobians[0].T @ jacobians[1].T @ jacobians[2].T
    shapes = " ".join(f"({a}x{b})" for a, b in (j.shape for j in jacobians))
    rows = [[l, f"{WIDTHS[l]}x{WIDTHS[l - 1]}", f"{np.abs(j).max():.3f}"]
            for l, j in enumerate(jacobians, 1)]
    table = format_table(["l", "J_{f_l}: outputs x inputs", "largest entry"], rows)
    errors = {"last_to_first": _relative(product, whole),
              "slide_order_of_transposes": _relative(transposes.T, whole)}
    table += (f"\nJ of the composition (2x4) by central differences, step {STEP:g}, float64:"
              f"\n  J_f3 J_f2 J_f1 (the lecture's [dpsi/dx], a row per output): max relative "
              f"difference {errors['last_to_first']:.1e}"
              f"\n  J_f1^T J_f2^T J_f3^T (the slide's order, for transposed Jacobians): "
              f"{errors['slide_order_of_transposes']:.1e} from J^T"
              f"\n  J_f1 J_f2 J_f3 as the slide writes it, with these shapes {shapes}: "
              f"not defined ({jacobians[0].shape[1]} columns against {jacobians[1].shape[0]} "
              f"rows)")
    result = Result("chain-rule", "the Jacobian of a composition is the product of the layers' "
                                  "Jacobians, from the last layer to the first",
                    table, {"errors": errors, "jacobian": whole.tolist(),
                            "layers": [j.tolist() for j in jacobians]})
    result.notes.append("the slide's product J_f1 J_f2 ... J_fN is the order for Jacobians "
                        "written with a column per output; with the lecture's own "
                        "[dpsi/dx] (a row per output, a few slides on) it is J_fN ... J_f1")
    return with_figure(result, out_dir, _draw, jacobians, product, whole, ncols=5,
                       size=(16, 3.4), title="Back-propagation: the chain rule. The Jacobian "
                                             "of the MLP 4-5-3-2 is the product of its "
                                             "layers' Jacobians")


def _draw(axes, jacobians, product, whole):
    panels = [(f"J_f{l} ({j.shape[0]}x{j.shape[1]})", j) for l, j in enumerate(jacobians, 1)]
    panels += [("J_f3 J_f2 J_f1", product), ("finite differences", whole)]
    layers, whole_top = max(np.abs(j).max() for j in jacobians), np.abs(whole).max()
    for i, (ax, (title, m)) in enumerate(zip(axes, panels)):
        top = layers if i < 3 else whole_top  # the last two on their own scale, shared
        ax.imshow(m, cmap="RdBu_r", vmin=-top, vmax=top)
        ax.set_title(title, fontsize=10)
        ax.set(xlabel="input", ylabel="output")
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
        for (r, c), v in np.ndenumerate(m):  # the entries, to read (and compare) them
            ax.text(c, r, f"{v:.4f}" if i >= 3 else f"{v:.2f}", ha="center", va="center",
                    fontsize=7)
