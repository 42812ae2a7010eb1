"""Back-propagation, layer by layer, in the lecture's notation, and what it costs.

One sample through an MLP with sigma = tanh after every layer, and the squared
error l = ||x^(L) - y||^2, run layer by layer by the engine:

  forward:  s^(l) = w^(l) x^(l-1) + b^(l),  x^(l) = sigma(s^(l));
  backward: dl/ds^(l) = dl/dx^(l) * sigma'(s^(l)),  dl/dx^(l-1) = w^(l)T dl/ds^(l),
            dl/dw^(l) = dl/ds^(l) x^(l-1)T,  dl/db^(l) = dl/ds^(l).

Every quantity the backward pass gives (dl/ds, dl/dx, dl/dw, dl/db) is checked
against central finite differences of the loss, and against the lecture's
formulas written out in numpy. Then the cost: the lecture's rule of thumb is
that the backward pass costs twice the forward one (two products per layer,
w^T dl/ds and dl/ds x^T, against one). The model summary counts the FLOPs of
a larger MLP, and the time of its forward and backward passes is measured.
"""
from __future__ import annotations

import time

import numpy as np

from .. import build
from ..data import load_dataset
from ..layers import Linear, Tanh
from ..losses import MSE, CrossEntropy
from ..model import Sequential
from ..summary import summarize
from ..testing import numeric_gradient
from .common import Result, experiment, finish, format_table, vector, with_figure

WIDTHS = (4, 5, 3, 2)        # D, hidden, hidden, C
STEP = 1e-6                  # of the central finite differences
COST_HIDDEN = (1024, 1024)   # the MLP 784-1024-1024-10 whose cost is measured


def mlp(seed: int = 0) -> Sequential:
    """Linear + tanh per layer, tanh after the last too (the lecture's x^(L) = sigma(s^(L)))."""
    layers = []
    for n_in, n_out in zip(WIDTHS, WIDTHS[1:]):
        layers += [Linear(n_in, n_out), Tanh()]
    return Sequential(*layers, seed=seed).astype(np.float64)


def sample(seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (1, WIDTHS[0])), rng.uniform(-1, 1, (1, WIDTHS[-1]))


def passes(model: Sequential, x, y):
    """The engine's forward and backward, layer by layer: {l: quantities}, l = 1..L,
    each with s, x (forward) and dl_ds, dl_dx_prev, dl_dw, dl_db (backward)."""
    loss = MSE(reduction="sum")
    model.zero_grad()
    layers = {}
    h = x
    for l, (linear, sigma) in enumerate(zip(model.layers[::2], model.layers[1::2]), 1):
        s = linear.forward(h).copy()
        h = sigma.forward(s).copy()
        layers[l] = {"s": s, "x": h, "linear": linear, "sigma": sigma}
    value = loss.forward(h, y)
    grad = loss.backward()
    for l in sorted(layers, reverse=True):
        q = layers[l]
        q["dl_dx"] = grad.copy()
        q["dl_ds"] = q["sigma"].backward(grad).copy()
        grad = q["linear"].backward(q["dl_ds"])
        q["dl_dx_prev"] = grad.copy()
        q["dl_dw"], q["dl_db"] = q["linear"].weight.grad.copy(), q["linear"].bias.grad.copy()
    return value, layers


def loss_from(model: Sequential, start: int, h, y) -> float:
    """l with the network run from layer index ``start`` on, fed with ``h``."""
    for layer in model.layers[start:]:
        h = layer.forward(h)
    return MSE(reduction="sum").forward(h, y)


def finite_differences(model: Sequential, x, y, layers) -> dict:
    """{l: {name: array}}: dl/ds^(l), dl/dx^(l), dl/dw^(l), dl/db^(l) by central differences."""
    found = {}
    for l, q in layers.items():
        index = 2 * (l - 1)  # of the Linear of layer l in model.layers
        s, h = q["s"].copy(), q["x"].copy()  # perturbed in place, as the parameters are
        entry = {"dl_ds": numeric_gradient(lambda: loss_from(model, index + 1, s, y), s, STEP),
                 "dl_dx": numeric_gradient(lambda: loss_from(model, index + 2, h, y), h, STEP)}
        for name, key in (("dl_dw", "weight"), ("dl_db", "bias")):
            value = q["linear"].params()[key].value
            entry[name] = numeric_gradient(lambda: loss_from(model, 0, x, y), value, STEP)
        found[l] = entry
    return found


def lecture_formulas(model: Sequential, x, y, layers) -> dict:
    """{l: {name: array}}: the backward pass written out as the lecture does, in numpy."""
    out, prev = {}, {0: x, **{l: q["x"] for l, q in layers.items()}}
    dl_dx = 2 * (layers[max(layers)]["x"] - y)  # from the definition of l
    for l in sorted(layers, reverse=True):
        w = layers[l]["linear"].weight.value
        dl_ds = dl_dx * (1 - np.tanh(layers[l]["s"]) ** 2)  # tanh' = 1 - tanh^2
        out[l] = {"dl_dx": dl_dx, "dl_ds": dl_ds, "dl_dw": dl_ds.T @ prev[l - 1],
                  "dl_db": dl_ds.sum(axis=0)}
        dl_dx = dl_ds @ w
    return out


def _relative(a, b) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def cost(batch: int, repeats: int):
    """(summary, forward seconds, backward seconds) of the MLP 784-1024-1024-10 at ``batch``:
    the median of ``repeats`` timed passes after two unmeasured ones."""
    model = build("mlp", seed=0, hidden=COST_HIDDEN)
    data = load_dataset("mnist-5k")
    x, y = data.x_train[:batch], data.y_train[:batch]
    loss = CrossEntropy()
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        out = model.forward(x)
        middle = time.perf_counter()
        loss.forward(out, y)
        dl_dy = loss.backward()
        model.zero_grad()
        after_loss = time.perf_counter()
        model.backward(dl_dy)
        times.append((middle - start, time.perf_counter() - after_loss))
    forward, backward = np.median(times[2:], axis=0)  # the first two passes are not measured
    return summarize(model, batch=batch), float(forward), float(backward)


@experiment("backprop",
            "back-propagation layer by layer on an MLP: s, x and every gradient against "
            "finite differences and the lecture's formulas; backward against forward cost "
            "(FLOPs from the summary, and measured time)",
            slide="Back-propagation",
            quote="The rule of thumb is that the backward pass is twice more expensive than "
                  "the forward one.")
def run(out_dir=None, fast=False, batch: int | None = None) -> Result:
    model = mlp()
    x, y = sample()
    value, layers = passes(model, x, y)
    fd = finite_differences(model, x, y, layers)
    formulas = lecture_formulas(model, x, y, layers)
    names = ("dl_ds", "dl_dx", "dl_dw", "dl_db")
    rows, per_layer = [], {}
    for l, q in layers.items():
        errors = {n: _relative(q[n], fd[l][n]) for n in names}
        lecture = max(_relative(q[n], formulas[l][n]) for n in names)
        per_layer[l] = {"s": q["s"][0].tolist(), "x": q["x"][0].tolist(),
                        **{n: q[n].tolist() for n in names},
                        "vs_finite_differences": errors, "vs_lecture_formulas": lecture}
        rows.append([l, f"{WIDTHS[l]}x{WIDTHS[l - 1]}", vector(q["s"][0], ".3f"),
                     vector(q["x"][0], ".3f"), vector(q["dl_ds"][0], ".3f"),
                     f"{max(errors.values()):.1e}", f"{lecture:.1e}"])
    table = format_table(["l", "w^(l)", "s^(l)", "x^(l) = tanh(s^(l))", "dl/ds^(l)",
                          "vs finite diff. (max rel.)", "vs lecture's formulas"], rows)
    table += (f"\nMLP {'-'.join(map(str, WIDTHS))}, tanh after every layer, one sample, "
              f"l = ||x^(L) - y||^2 = {value:.6f}, float64; central differences with step "
              f"{STEP:g} on every s, x, w and b")
    batch = batch or (64 if fast else 256)
    summary, t_forward, t_backward = cost(batch, repeats=5 if fast else 20)
    cost_rows = [[r.index, r.layer, f"{r.forward_flops:.3g}", f"{r.backward_flops:.3g}",
                  f"{r.backward_flops / r.forward_flops:.2f}" if r.forward_flops else "-"]
                 for r in summary.rows]
    run_ratio = summary.backward_flops / summary.forward_flops
    cost_rows.append(["", "total", f"{summary.forward_flops:.3g}",
                      f"{summary.backward_flops:.3g}", f"{run_ratio:.2f}"])
    # Nothing before the first Linear needs a gradient, so the engine skips its input
    # gradient, w^T dl/ds, and the summary counts what runs; the lecture's count has it.
    skipped = 2 * batch * 784 * COST_HIDDEN[0]
    flops_ratio = (summary.backward_flops + skipped) / summary.forward_flops
    time_ratio = t_backward / t_forward
    table += "\n\n" + format_table(["#", "layer", "forward FLOPs", "backward FLOPs",
                                    "backward / forward"], cost_rows)
    table += (f"\nMLP 784-{'-'.join(map(str, COST_HIDDEN))}-10, batch {batch}, float32, FLOPs "
              f"from nnumba.summary, which counts what the engine runs: it skips the input "
              f"gradient of Linear #1 (nothing before it has parameters); with it, as the "
              f"lecture counts, backward / forward = {flops_ratio:.2f}\nmeasured: forward "
              f"{1000 * t_forward:.2f} ms, backward {1000 * t_backward:.2f} ms, backward / "
              f"forward = {time_ratio:.2f} (median of the passes, on this machine as loaded now)")
    numbers = {"layers": per_layer, "loss": value,
               "cost": {"batch": batch, "forward_flops": summary.forward_flops,
                        "backward_flops": summary.backward_flops, "flops_ratio": flops_ratio,
                        "skipped_input_gradient_flops": skipped, "run_flops_ratio": run_ratio,
                        "forward_seconds": t_forward, "backward_seconds": t_backward,
                        "time_ratio": time_ratio,
                        "rows": [[r.layer, r.forward_flops, r.backward_flops]
                                 for r in summary.rows]}}
    result = Result("backprop", "back-propagation is the chain rule applied layer by layer; the "
                                "backward pass costs about twice the forward one", table, numbers)
    return with_figure(result, out_dir, _draw, layers, fd, summary,
                       (flops_ratio, run_ratio, time_ratio), ncols=2, size=(12, 4.8),
                       title="Back-propagation: the gradients against finite differences, and "
                             "backward against forward cost")


def _draw(axes, layers, fd, summary, totals):
    ax = axes[0]
    names = {"dl_ds": "∂l/∂s", "dl_dx": "∂l/∂x", "dl_dw": "∂l/∂w", "dl_db": "∂l/∂b"}
    width = 0.8 / len(names)
    for k, (name, text) in enumerate(names.items()):
        errors = [_relative(layers[l][name], fd[l][name]) for l in layers]
        ax.bar(np.array(list(layers)) + (k - 1.5) * width, errors, width, label=text)
    ax.axhline(np.finfo(np.float64).eps, color="k", ls=":", lw=1, label="float64 epsilon")
    ax.set(yscale="log", xlabel="layer l of the MLP 4-5-3-2",
           ylabel="max relative difference,\nbackward pass vs finite differences")
    ax.set_xticks(list(layers), [f"layer {l}" for l in layers])
    ax.set_title("Every gradient of every layer agrees with finite differences", fontsize=10)
    ax.legend(fontsize=8, ncol=3)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax = axes[1]
    rows = [r for r in summary.rows if r.forward_flops]
    labels = [f"#{r.index} {r.layer}" for r in rows] + [
        "total FLOPs, every input gradient", "total FLOPs, as run", "total, measured time"]
    ratios = [r.backward_flops / r.forward_flops for r in rows] + list(totals)
    colours = ["tab:blue"] * (len(rows) + 2) + ["tab:orange"]
    ax.barh(range(len(labels)), ratios, color=colours)
    ax.axvline(2, color="k", ls="--", lw=1, label="the lecture's rule of thumb: 2")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    finish(ax, "Cost of the backward pass against the forward pass",
           xlabel="backward / forward", ylabel="layer of MLP 784-1024-1024-10")
