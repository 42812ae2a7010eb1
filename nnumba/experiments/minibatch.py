"""Mini-batch size and loss reduction (MNIST): gradient descent, mini-batch SGD and
per-sample SGD, the training loss against the number of samples visited.

The zoo's mlp (784-256-10) on the embedded MNIST subset, from the same initial
parameters, with the same step on the mean loss for every batch size: the
replicated-set argument's scaling (a batch of B samples moves as a full step
would), so that only the batch size differs. Every run visits the same number
of samples, in the same random order (a fresh permutation per epoch); gradient
descent (batch = the whole set) makes one update per pass.

The lecture's mini-batch SGD listing has two slips::

    for k in range(nb_epochs):
        for b in range(0, x.shape[0], nb):
            output = mlp.forward(x[b:b+nb])
            mlp.compute_grad(dloss(y, output))     # y: all the targets, not y[b:b+nb]
        mlp.gradient_descent_step(eta)             # outside the inner loop

As written it would compare a batch's outputs with every target, and step once
per epoch. What runs here is the algorithm the slide states,
w_{t+1} = w_t - eta sum_b grad l_{n(t,b)}(w_t): one step per mini-batch, from
that batch's own targets (SGDTrainer), as LISTING_NOTE says in the output.

"Any partial sum is also an unbiased estimate, although of greater variance": at
the initial weights, the mean gradient of a random mini-batch of B samples (drawn
without replacement) is compared with the whole set's, over many draws. Its mean
is the whole set's gradient, and E||g_B - g||^2 is the closed form of sampling
without replacement, sigma^2 / B (N - B) / (N - 1), sigma^2 the variance of the N
per-sample gradients (each computed alone, at batch 1).
"""
from __future__ import annotations

import numpy as np

from .. import build
from ..data import load_dataset
from ..layers.validation import check_memory
from ..losses import CrossEntropy
from ..train import GDTrainer, SGDTrainer, evaluate
from .common import Result, experiment, finish, format_table, with_figure

LR = 0.05
LISTING_NOTE = ("the lecture's mini-batch SGD listing calls dloss(y, output) with all of y and "
                "steps once per epoch, after the inner loop; run here is what the slide "
                "states: one step per mini-batch, with that batch's targets y[b:b+nb]")
STEP_NOTE = ("the slide's update is w - eta sum of the batch's gradients; each run here "
             "steps by lr {lr} times their mean, eta = {lr} / B in the slide's notation: one "
             "step size per sample for every batch size B, which is what makes the curves "
             "comparable per sample visited")
COLOURS = ("tab:red", "tab:orange", "tab:green", "tab:blue", "k")
#: random mini-batches drawn per batch size to measure the gradient's spread
DRAWS = 100


def _gradient(model, loss, x, y) -> np.ndarray:
    """The mean loss's gradient over (x, y), a copy of the model's flat gradients."""
    model.zero_grad()
    loss.forward(model.forward(x), y)
    model.backward(loss.backward())
    return np.array(model.flat_grads, dtype=np.float64)


def gradient_spread(x, y, batch_sizes, draws: int = DRAWS, seed: int = 0) -> dict:
    """{"sigma2": the variance of the per-sample gradients, "batches": {B: {"variance":
    E||g_B - g||^2 over ``draws`` random batches, "closed_form": sigma^2 / B (N - B) /
    (N - 1), "bias": ||mean g_B - g||, "bias_sd": the spread that mean has by
    chance, sqrt(closed_form / draws)}}} at the mlp's initial weights, in float64."""
    model = build("mlp", seed=seed).astype(np.float64)
    loss = CrossEntropy()
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    whole = _gradient(model, loss, x, y)
    squares = sum(float(np.sum(_gradient(model, loss, x[i:i + 1], y[i:i + 1]) ** 2))
                  for i in range(n))
    sigma2 = squares / n - float(np.sum(whole ** 2))
    rng = np.random.default_rng(seed)
    batches = {}
    for b in batch_sizes:
        if b >= n:
            continue  # the whole set: no spread
        total, spread = np.zeros_like(whole), 0.0
        for _ in range(draws):
            pick = rng.choice(n, size=b, replace=False)
            g = _gradient(model, loss, x[pick], y[pick])
            total += g
            spread += float(np.sum((g - whole) ** 2))
        closed = sigma2 / b * (n - b) / (n - 1)
        batches[b] = {"variance": spread / draws, "closed_form": closed,
                      "bias": float(np.linalg.norm(total / draws - whole)),
                      "bias_sd": float(np.sqrt(closed / draws))}
    return {"sigma2": sigma2, "gradient_norm": float(np.linalg.norm(whole)), "draws": draws,
            "batches": batches}


def loss_curve(x, y, batch_size: int, epochs: int, checkpoints: int = 30, seed: int = 0):
    """[(samples visited, mean training loss over (x, y)), ...] for one batch size.

    SGD is run chunk by chunk over one long stream of per-epoch permutations, so
    the loss over the whole set can be measured at log-spaced points; a batch
    size of len(x) is exact gradient descent (GDTrainer, one update per pass)."""
    n = len(x)
    model = build("mlp", seed=seed)
    loss = CrossEntropy()
    trainer = (GDTrainer(model, loss, lr=LR, batch_size=1000) if batch_size >= n else
               SGDTrainer(model, loss, lr=LR, batch_size=batch_size, shuffle=False))
    step = min(batch_size, n)  # samples per update
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n) for _ in range(epochs)])
    # Log-spaced points for the figure, and the end of every pass for the table.
    marks = np.union1d(np.geomspace(step, epochs * n, checkpoints).astype(int) // step * step,
                       np.arange(1, epochs + 1) * n)
    curve, seen = [(0, evaluate(model, loss, x, y)["loss"])], 0
    for mark in marks:
        if batch_size >= n:
            trainer.fit(x, y, epochs=(mark - seen) // n)
        else:
            chunk = order[seen:mark]
            trainer.fit(x[chunk], y[chunk], epochs=1)
        seen = int(mark)
        curve.append((seen, evaluate(model, loss, x, y)["loss"]))
    return curve


@experiment("minibatch-loss",
            "MNIST: training loss against the number of samples visited for gradient "
            "descent, mini-batch SGD (batch 10, 100, 1000) and per-sample SGD; the spread of "
            "the mini-batch gradient against the closed form",
            slide="Mini-batch size and loss reduction (MNIST)",
            quote="The mini-batch stochastic gradient descent is the standard procedure for deep "
                  "learning.")
def run(out_dir=None, fast=False, batch_sizes=None, epochs: int | None = None) -> Result:
    data = load_dataset("mnist-5k")
    n = 500 if fast else len(data.x_train)
    epochs = epochs or (3 if fast else 10)
    check_memory(f"minibatch-loss's sample order for epochs={epochs}", 2 * 8 * n * epochs)
    x, y = data.x_train[:n], data.y_train[:n]
    if batch_sizes is None:  # (an empty list is no default)
        batch_sizes = (1, 10, 100, min(1000, n // 2), n)
    numbers, rows = {}, []
    for b in batch_sizes:
        curve = loss_curve(x, y, b, epochs, checkpoints=12 if fast else 30)
        one_pass = dict(curve).get(n, float("nan"))
        numbers[b] = {"curve": curve, "updates": epochs * n // b, "after_one_pass": one_pass,
                      "final_loss": curve[-1][1]}
        rows.append(["GD (the whole set)" if b == n else "per-sample SGD" if b == 1 else
                     "mini-batch SGD", b, epochs * n // b, f"{curve[0][1]:.3f}",
                     f"{one_pass:.3f}", f"{curve[-1][1]:.4f}"])
    table = format_table(["method", "batch", "updates", "initial loss", "after 1 pass",
                          f"after {epochs} passes"], rows)
    table += (f"\nmean cross-entropy over the {n} training images; MLP 784-256-10, "
              f"lr {LR} on the mean loss for all, no momentum")
    spread = gradient_spread(x, y, batch_sizes, draws=20 if fast else DRAWS)
    table += "\n\n" + _spread_table(spread, n)
    result = Result("minibatch-loss",
                    "per sample visited, smaller batches reduce the loss faster: partial sums "
                    "are good gradient estimates, and exact GD wastes its passes",
                    table, {"batches": numbers, "n": n, "epochs": epochs, "lr": LR,
                            "gradient_spread": spread},
                    notes=[LISTING_NOTE, STEP_NOTE.format(lr=LR)])
    curves = {b: entry["curve"] for b, entry in numbers.items()}
    return with_figure(result, out_dir, _draw, curves, n, spread, ncols=3,
                       title="Mini-batch size and loss reduction (MNIST)", size=(18, 4.8))


def _spread_table(spread, n) -> str:
    rows = [[b, f"{e['variance']:.4g}", f"{e['closed_form']:.4g}",
             f"{e['variance'] / e['closed_form']:.3f}", f"{e['bias']:.3g}", f"{e['bias_sd']:.3g}"]
            for b, e in spread["batches"].items()]
    return (f"partial sums are unbiased, with more variance: the mean gradient of B random "
            f"samples (without replacement) against the whole set's (norm "
            f"{spread['gradient_norm']:.4g}), {spread['draws']} draws each, at the initial "
            f"weights\n" + format_table(
                ["batch", "E||g_B - g||^2", "sigma^2/B (N-B)/(N-1)", "ratio",
                 "||mean g_B - g||", "expected by chance"], rows) +
            f"\nsigma^2 = {spread['sigma2']:.4g}: the variance of the {n} per-sample gradients")


def _draw(axes, curves, n, spread):
    _draw_spread(axes[2], spread, n)
    for ax, per_update in zip(axes, (False, True)):
        for (b, curve), colour in zip(curves.items(), COLOURS):
            seen = np.array([s for s, _ in curve[1:]], dtype=float)
            loss = [l for _, l in curve[1:]]
            ax.plot(seen / b if per_update else seen, loss, "o-" if b == n else "-",
                    color=colour, ms=4, lw=1.3,
                    label=f"GD (batch {n})" if b == n else f"batch {b}")
        finish(ax, grid="both", xscale="log", ylabel="mean training loss (cross-entropy)")
    axes[0].set_xlabel("samples visited (log scale)")
    axes[0].set_title("Mini-batch size and loss reduction (MNIST):\nloss against samples visited")
    axes[1].set_xlabel("parameter updates (log scale)")
    axes[1].set_title("The same runs against updates:\nlarger batches make better steps")


def _draw_spread(ax, spread, n):
    sizes = np.array(sorted(spread["batches"]), dtype=float)
    if not sizes.size:
        return
    measured = [spread["batches"][b]["variance"] for b in sorted(spread["batches"])]
    line = np.geomspace(sizes[0], sizes[-1], 100)
    ax.plot(line, spread["sigma2"] / line * (n - line) / (n - 1), color="0.4", lw=1.5,
            label="σ²/B · (N − B)/(N − 1), σ² from the per-sample gradients")
    ax.plot(sizes, measured, "o", color="tab:red", ms=7,
            label=f"measured over {spread['draws']} random batches")
    ax.axhline(spread["gradient_norm"] ** 2, color="k", ls=":", lw=1,
               label="||g||², the whole set's gradient")
    finish(ax, "Partial sums: unbiased (the table), of greater\nvariance the smaller the batch",
           legend=8, grid="both", xscale="log", yscale="log", xlabel="batch size B (log scale)",
           ylabel="E ||g_B − g||² at the initial weights")
