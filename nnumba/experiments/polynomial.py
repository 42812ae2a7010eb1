"""Polynomial features Phi(x) = (1, x, ..., x^D): capacity grows with D.

The fit alpha minimises the mean squared error ||Phi alpha - y||^2, which has
an analytic solution (least squares), as the lecture says of the MSE.
"""
import numpy as np

from .common import Result, experiment, feature_layer, features, format_table, with_figure

DEGREES = (0, 1, 2, 3, 5, 8, 11)


def target(x):
    """The 1-D function the polynomials fit."""
    return np.sin(np.pi * x) + 0.5 * x


def sample(n: int = 12, noise: float = 0.15, seed: int = 0):
    """n evenly spaced x in [-0.95, 0.95], y = target(x) + Gaussian noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-0.95, 0.95, n)
    return x, target(x) + rng.normal(0, noise, n)


def fit(degree: int, x, y):
    """(alpha, Phi layer) of the least-squares polynomial of ``degree``."""
    phi = feature_layer("PolynomialFeatures", in_features=1, degree=degree)
    alpha, *_ = np.linalg.lstsq(features(phi, x[:, None]), y, rcond=None)
    return alpha, phi


@experiment("polynomial-capacity",
            "polynomial features Phi(x) = (1, x, ..., x^D): least-squares fits of a 1-D "
            "function for increasing D",
            features=("PolynomialFeatures",),
            slide="Limitation of linear models: polynomial features",
            quote="By increasing D, we can approximate any continuous real function on a compact "
                  "space (Stone-Weierstrass theorem).")
def run(out_dir=None, fast=False, degrees=DEGREES) -> Result:
    x, y = sample()
    grid = np.linspace(-1, 1, 400)
    rows, numbers, curves = [], {}, {}
    for degree in degrees:
        alpha, phi = fit(degree, x, y)
        train_mse = float(np.mean((features(phi, x[:, None]) @ alpha - y) ** 2))
        curve = features(phi, grid[:, None]) @ alpha
        true_mse = float(np.mean((curve - target(grid)) ** 2))
        # the theorem's approximation: the least-squares fit to the function itself
        best, _ = fit(degree, grid, target(grid))
        approx = features(phi, grid[:, None]) @ best
        approx_mse = float(np.mean((approx - target(grid)) ** 2))
        numbers[degree] = {"train_mse": train_mse, "mse_to_function": true_mse,
                           "approximation_mse": approx_mse}
        curves[degree] = (curve, approx)
        rows.append([degree, degree + 1, f"{train_mse:.2e}", f"{true_mse:.2e}",
                     f"{approx_mse:.2e}"])
    table = format_table(["D", "parameters", "train MSE", "its MSE to the function",
                          "best fit's MSE to the function"], rows)
    table += (f"\n{len(x)} noisy samples of sin(pi x) + x / 2 on [-1, 1]; the train MSE "
              f"can only fall as D grows (nested models), and is 0 from D = {len(x) - 1}: "
              f"that fit then follows the noise and moves away from the function "
              f"(overfitting). The best fit, least squares to the function itself on "
              f"{len(grid)} points, gets ever closer as D grows: the approximation the "
              f"theorem promises")
    result = Result("polynomial-capacity", "increasing D makes the capacity as high as we want",
                    table, {"degrees": numbers, "n": len(x)})
    columns = (len(degrees) + 1) // 2
    return with_figure(result, out_dir, _draw, x, y, grid, curves, numbers,
                       nrows=2, ncols=columns, size=(3.2 * columns, 6),
                       title="Limitation of linear models: polynomial features, least-squares "
                             "fits of degree D (more capacity as D grows)")


def _draw(axes, x, y, grid, curves, numbers):
    for ax, (degree, (curve, approx)) in zip(axes, curves.items()):
        ax.plot(grid, target(grid), color="0.6", lw=1, label="true function")
        ax.plot(grid, approx, color="tab:blue", lw=1, ls="--", label="best fit to it")
        ax.plot(grid, curve, color="tab:red", lw=1.5, label="fit α·Φ(x) to the samples")
        ax.scatter(x, y, s=16, color="k", zorder=3, label="samples")
        ax.set(ylim=(-2.2, 2.2), xlabel="x", ylabel="y")
        ax.set_title(f"D = {degree}: train MSE {numbers[degree]['train_mse']:.1e}", fontsize=10)
    axes[0].legend(fontsize=7, loc="upper left")
