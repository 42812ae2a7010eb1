"""xor: not linearly separable on (x_u, x_v), separable after Phi = (x_u, x_v, x_u x_v)."""
import numpy as np

from ..train import train_perceptron
from .common import (Result, decision_regions, experiment, feature_layer, features, finish,
                     format_table, label_scatter, linearly_separable, percent, with_figure)

CORNERS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR = np.array([-1, 1, 1, -1])  # +1 where exactly one input is 1


def xor_data(per_corner: int = 0, noise: float = 0.1, seed: int = 0):
    """The four corners; with per_corner > 0, that many noisy copies of each instead."""
    if per_corner == 0:
        return CORNERS.copy(), XOR.copy()
    rng = np.random.default_rng(seed)
    which = rng.integers(0, 4, 4 * per_corner)
    return CORNERS[which] + rng.normal(0, noise, (len(which), 2)), XOR[which]


@experiment("xor", "xor: the perceptron fails on raw (x_u, x_v) and succeeds on "
                   "Phi = (x_u, x_v, x_u x_v); both decision boundaries plotted",
            features=("XorProduct",),
            slide="Limitation of linear models",
            quote="The xor example can be solved by pre-processing the data to make the two "
                  "populations linearly separable.")
def run(out_dir=None, fast=False, max_epochs: int = 100) -> Result:
    phi = feature_layer("XorProduct")
    # fast runs it all (it takes a second): at 20 a corner the raw perceptron's last line
    # fell outside the figure, which then showed no boundary at all
    sets = {"4 corners": xor_data(), "noisy corners": xor_data(per_corner=50)}
    rows, numbers, fits = [], {}, {}
    for set_name, (x, y) in sets.items():
        for feat_name, f in (("raw (x_u, x_v)", x), ("Phi (x_u, x_v, x_u x_v)", features(phi, x))):
            fit = train_perceptron(f, y, max_epochs=max_epochs)
            separable = linearly_separable(f, y)
            train_error = float(np.mean(fit.predict(f) != y))
            numbers[f"{set_name} / {feat_name.split()[0]}"] = {
                "separable": separable, "converged": fit.converged,
                "epochs": len(fit.history), "train_error": train_error}
            rows.append([set_name, feat_name, "yes" if separable else "no",
                         "yes" if fit.converged else "no", len(fit.history),
                         percent(train_error)])
            fits[(set_name, feat_name.split()[0])] = fit
    table = format_table(["data", "features", "separable (LP)", "perceptron converged",
                          "epochs", "train error"], rows)
    x, y = sets["noisy corners"]
    result = Result("xor", "xor is not linearly separable; Phi(x_u, x_v) = (x_u, x_v, x_u x_v) "
                           "makes it separable", table, numbers)
    return with_figure(result, out_dir, _draw, x, y, phi, fits, ncols=2, size=(10, 4.6),
                       title="Limitation of linear models: xor, before and after Φ(x_u, x_v) = "
                             "(x_u, x_v, x_u·x_v)")


def _draw(axes, x, y, phi, fits):
    raw, mapped = fits[("noisy corners", "raw")], fits[("noisy corners", "Phi")]
    lim = (-0.5, 1.5)
    decision_regions(axes[0], raw.decision, lim, lim)
    decision_regions(axes[1], lambda p: mapped.decision(features(phi, p)), lim, lim)
    titles = (f"Perceptron on (x_u, x_v): no line separates xor\n"
              f"(stopped after {len(raw.history)} epochs, "
              f"{percent(np.mean(raw.predict(x) != y))} train error)",
              f"Perceptron on (x_u, x_v, x_u·x_v): converged\n"
              f"in {len(mapped.history)} epochs; boundary w·Φ(x) + b = 0")
    for ax, title in zip(axes, titles):
        label_scatter(ax, x, y)
        finish(ax, title, loc="upper right", xlabel="x_u", ylabel="x_v", aspect="equal")
