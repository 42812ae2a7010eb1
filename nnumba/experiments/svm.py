"""The SVM loss lambda ||w||^2 + mean hinge against the perceptron, on the same
separable data: the perceptron stops at the first separating line, the SVM
moves it away from the samples. Margin = distance of the closest sample to
the boundary, min_n y_n (w . x_n + b) / ||w||.  Subgradient descent stops near
the optimum, not at it: the exact optimum (scipy's SLSQP on the primal QP) is
printed beside it."""
import numpy as np

from ..layers import Linear
from ..losses import Hinge
from ..model import Sequential
from ..train import GDTrainer, train_perceptron
from .common import (Result, experiment, finish, format_table, geometric_margin, label_scatter,
                     with_figure)

LAMBDAS = (1e-1, 1e-2, 1e-3, 1e-4)


def separable_2d(n: int = 200, gap: float = 0.25, seed: int = 0):
    """n points uniform in [-2, 2]^2 outside a band of width ``gap`` around the line
    0.8 x_u + 0.6 x_v = 0.3, labelled by its side."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (4 * n, 2))
    side = x @ np.array([0.8, 0.6]) - 0.3
    keep = np.abs(side) > gap / 2
    return x[keep][:n], np.where(side[keep][:n] > 0, 1, -1)


def train_svm(x, y, lam: float, epochs: int = 2000, lr: float = 0.1):
    """(w, b, objective) of lambda ||w||^2 + mean hinge by (sub)gradient descent:
    Linear(2, 1), the Hinge loss, GDTrainer with momentum (the hinge is not smooth,
    so plain steps crawl near the kinks)."""
    linear = Linear(x.shape[1], 1)
    model = Sequential(linear, seed=0).astype(np.float64)
    trainer = GDTrainer(model, Hinge(lam=lam), lr=lr, momentum=0.9, batch_size=len(x))
    trainer.fit(x.astype(np.float64), y, epochs=epochs)
    w, b = linear.weight.value[0].copy(), float(linear.bias.value[0])
    objective = lam * float(w @ w) + float(np.mean(np.maximum(0, 1 - y * (x @ w + b))))
    return w, b, objective


def exact_svm(x, y, lam: float):
    """(w, b, objective, converged) of the same objective solved exactly, independently of
    nnumba: the primal QP, minimise lam ||w||^2 + mean xi subject to
    y_n (w . x_n + b) >= 1 - xi_n and xi >= 0, by scipy's SLSQP."""
    from scipy.optimize import LinearConstraint, minimize
    n, d = x.shape
    x, y = x.astype(np.float64), y.astype(np.float64)

    def objective(p):
        return lam * p[:d] @ p[:d] + p[d + 1:].mean()

    def gradient(p):
        g = np.full_like(p, 1 / n)
        g[:d], g[d] = 2 * lam * p[:d], 0
        return g
    margins = LinearConstraint(np.hstack([y[:, None] * x, y[:, None], np.eye(n)]), 1, np.inf)
    start = np.concatenate([np.zeros(d + 1), np.ones(n)])  # w = 0, b = 0: every xi 1
    res = minimize(objective, start, jac=gradient, constraints=[margins], method="SLSQP",
                   bounds=[(None, None)] * (d + 1) + [(0, None)] * n,
                   options={"ftol": 1e-14, "maxiter": 1000})
    w, b = res.x[:d], float(res.x[d])
    objective = lam * float(w @ w) + float(np.mean(np.maximum(0, 1 - y * (x @ w + b))))
    return w, b, objective, bool(res.success)


@experiment("svm-vs-perceptron",
            "the SVM loss lambda ||w||^2 + mean hinge against the perceptron on the same "
            "separable data: the margins of both boundaries",
            slide="Support vector machines",
            quote="The perceptron stops as soon as it finds a separating boundary. Other "
                  "algorithms maximize the distance of samples to the decision boundary.")
def run(out_dir=None, fast=False, lambdas=None) -> Result:
    if lambdas is None:  # (an empty list is no default)
        lambdas = (1e-2, 1e-3) if fast else LAMBDAS
    x, y = separable_2d(n=100 if fast else 200)
    perceptron = train_perceptron(x, y, max_epochs=1000)
    boundaries = {"perceptron": (perceptron.w, perceptron.b)}
    margin = geometric_margin(perceptron.w, perceptron.b, x, y)
    rows = [["perceptron", "-", f"{margin:.4f}", f"{np.linalg.norm(perceptron.w):.3f}", "-",
             f"converged, {perceptron.updates} updates"]]
    numbers = {"perceptron": {"margin": margin, "converged": perceptron.converged}}
    for lam in lambdas:
        w, b, objective = train_svm(x, y, lam, epochs=1000 if fast else 5000)
        margin = geometric_margin(w, b, x, y)
        w_star, b_star, best, converged = exact_svm(x, y, lam)
        exact = {"margin": geometric_margin(w_star, b_star, x, y), "objective": best,
                 "w": w_star.tolist(), "b": b_star}
        boundaries[lam] = (w, b)
        numbers[f"svm {lam:g}"] = {"lambda": lam, "margin": margin, "objective": objective,
                                   "w": w.tolist(), "b": b, "exact": exact}
        rows.append(["SVM by GD", f"{lam:g}", f"{margin:.4f}", f"{np.linalg.norm(w):.3f}",
                     f"{objective:.5f}", f"1 / ||w|| = {1 / np.linalg.norm(w):.4f}"])
        rows.append(["exact (SLSQP)", f"{lam:g}", f"{exact['margin']:.4f}",
                     f"{np.linalg.norm(w_star):.3f}", f"{best:.5f}",
                     f"GD's objective {abs(objective - best):.1e} "
                     f"{'above' if objective >= best else 'below'}"
                     + ("" if converged else " (SLSQP did not converge)")])
    table = format_table(["boundary", "lambda", "margin", "||w||", "SVM objective", "note"], rows)
    table += (f"\n{len(x)} separable points in [-2, 2]^2 (no sample within 0.125 of the "
              f"generating line); margin = min_n y_n (w.x_n + b) / ||w||")
    if any(entry["margin"] < 0 for entry in numbers.values()):
        table += ("\na negative margin: the soft margin (large lambda) leaves a training "
                  "sample on the wrong side in exchange for a smaller ||w||")
    result = Result("svm-vs-perceptron",
                    "the perceptron stops at the first separating boundary; the SVM maximises "
                    "the distance of the samples to it", table, numbers)
    return with_figure(result, out_dir,
                       lambda axes: _draw(axes[0], x, y, boundaries, numbers), size=(6.4, 6),
                       title="Support vector machines: a wider margin than the perceptron's")


def _draw(ax, x, y, boundaries, numbers):
    """The perceptron and the SVM of smallest lambda (the widest margin), each with a
    band as wide as its margin on both sides and its closest samples circled."""
    lam = min(k for k in boundaries if k != "perceptron")
    shown = (("perceptron", boundaries["perceptron"], "k", "perceptron"),
             (f"svm {lam:g}", boundaries[lam], "tab:green", f"SVM, λ = {lam:g}"))
    u = np.linspace(-2, 2, 2)
    for (key, (w, b), colour, name), size in zip(shown, (90, 170)):
        margin = numbers[key]["margin"]
        norm = np.linalg.norm(w)
        line = -(w[0] * u + b) / w[1]
        shift = margin * norm / abs(w[1])  # vertical offset of the lines at distance margin
        ax.fill_between(u, line - shift, line + shift, color=colour, alpha=0.12)
        ax.plot(u, line, color=colour, lw=1.6, label=f"{name}: margin {margin:.3f}")
        distance = y * (x @ w + b) / norm
        closest = distance <= margin * 1.05 + 1e-3  # the SVM's are equal only up to its tolerance
        ax.scatter(x[closest, 0], x[closest, 1], s=size, facecolors="none",
                   edgecolors=colour, linewidths=1.5)
    label_scatter(ax, x, y, s=14)
    finish(ax, loc="lower left", xlim=(-2, 2), ylim=(-2, 2), aspect="equal", xlabel="x_u",
           ylabel="x_v", title="Perceptron vs SVM boundary on the same separable data\n"
                               "(bands: each boundary's margin; circled: the closest samples)")
