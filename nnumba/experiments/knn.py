"""k-NN on a task with radial symmetry and label noise: the 2-D coordinates
against the radius as the only feature.

The label is +1 inside the disk of area half the square [-1, 1]^2 and -1
outside; a fraction of the training labels is flipped; the test labels are
clean. The radius keeps what the label depends on and drops the angle, which
it does not: a neighbour in radius is as good as a neighbour in the plane, and
there are many more of them close by, so the vote averages the noise out.
"""
import numpy as np

from ..layers.validation import integer, number
from .common import (Result, experiment, feature_layer, features, finish, format_table, knn_predict,
                     label_scatter, percent, with_figure)

RADIUS = np.sqrt(2 / np.pi)  # the disk covers half of the square: balanced classes
NOISES = (0.0, 0.1, 0.2, 0.3)
KS = (1, 5, 11, 25)


def radial_data(n: int, noise: float, seed: int):
    """n points uniform in [-1, 1]^2 labelled by the disk; a ``noise`` fraction flipped."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    y = np.where(np.linalg.norm(x, axis=1) < RADIUS, 1, -1)
    flipped = rng.random(n) < noise
    return x, np.where(flipped, -y, y)


@experiment("knn-radius",
            "k-NN on a radially symmetric task with label noise: 2-D coordinates against "
            "the radius as feature",
            features=("Radius",),
            slide="Feature design: invariance",
            quote="Using the radius instead of 2d coordinates allows to cope with label noise.")
def run(out_dir=None, fast=False, noises=NOISES, ks=KS, n_train: int = 300,
        n_test: int = 2000) -> Result:
    seeds = 2 if fast else 5
    for noise in noises:  # a fraction of labels flipped: 1.5 flipped all, NaN none
        number("knn-radius", "each label noise", noise, 0, 1)
    for k in ks:  # a bool would run as k = 1
        integer("knn-radius", "each k", k, 1, None)
    radius = feature_layer("Radius", in_features=2)
    errors = {}  # (noise, k) -> (error on coordinates, error on radius), mean over seeds
    for noise in noises:
        per_seed = []
        for seed in range(seeds):
            x, y = radial_data(n_train, noise, seed)
            x_test, y_test = radial_data(n_test, 0.0, 1000 + seed)
            r, r_test = features(radius, x), features(radius, x_test)
            per_seed.append([(np.mean(knn_predict(x, y, x_test, k) != y_test),
                              np.mean(knn_predict(r, y, r_test, k) != y_test)) for k in ks])
        for k, (coords, radial) in zip(ks, np.mean(per_seed, axis=0)):
            errors[(noise, k)] = (float(coords), float(radial))
    rows = [[f"{noise:.0%}", k, percent(c), percent(r)] for (noise, k), (c, r) in errors.items()]
    table = format_table(["label noise", "k", "test error, (x_u, x_v)", "test error, radius"], rows)
    table += (f"\n{n_train} training points (noisy labels), {n_test} test points (clean "
              f"labels), mean over {seeds} draws")
    numbers = {"errors": {f"{noise}/{k}": {"coordinates": c, "radius": r}
                          for (noise, k), (c, r) in errors.items()},
               "noises": list(noises), "ks": list(ks)}
    result = Result("knn-radius",
                    "the radius, invariant to what does not change the label, copes with label "
                    "noise better than the 2-D coordinates", table, numbers)
    return with_figure(result, out_dir, _draw, radius, errors, n_train, ncols=3, size=(15, 4.8),
                       title="Feature design: invariance. k-NN with label noise, on (x_u, x_v) "
                             "and on the radius")


def _draw(axes, radius, errors, n_train, noise=0.2, k=11):
    from matplotlib.patches import Circle  # only drawn when matplotlib is there
    x, y = radial_data(n_train, noise, seed=0)
    r = features(radius, x)
    steps = 200
    grid = np.linspace(-1, 1, steps)
    gx, gy = np.meshgrid(grid, grid)
    points = np.column_stack([gx.ravel(), gy.ravel()])
    panels = ((axes[0], knn_predict(x, y, points, k), "coordinates (x_u, x_v)"),
              (axes[1], knn_predict(r, y, features(radius, points), k), "radius ‖x‖"))
    for ax, predicted, name in panels:
        ax.contourf(gx, gy, predicted.reshape(steps, steps), levels=[-2, 0, 2],
                    colors=["tab:blue", "tab:red"], alpha=0.18)
        ax.add_patch(Circle((0, 0), RADIUS, fill=False, ls="--", color="k", lw=1,
                            label="true boundary"))
        label_scatter(ax, x, y, s=12)
        ax.set(aspect="equal", xlabel="x_u", ylabel="x_v")
        ax.set_title(f"{k}-NN on {name},\n{noise:.0%} of the training labels flipped", fontsize=10)
    axes[0].legend(loc="upper right", fontsize=7, framealpha=0.95)
    noises = sorted({n for n, _ in errors})
    ax = axes[2]
    for kk, style in ((1, "--"), (k, "-")):
        if (noises[0], kk) not in errors:
            continue
        ax.plot([100 * n for n in noises], [100 * errors[(n, kk)][0] for n in noises],
                "o" + style, color="tab:purple", label=f"{kk}-NN on (x_u, x_v)")
        ax.plot([100 * n for n in noises], [100 * errors[(n, kk)][1] for n in noises],
                "s" + style, color="tab:green", label=f"{kk}-NN on the radius")
    finish(ax, grid="major", xlabel="training labels flipped (%)",
           ylabel="test error on clean labels (%)", title="Test error against label noise")
