"""Lecture review 24: what two experiments claim against an independent computation.

- polynomial-capacity quotes Stone-Weierstrass, but its only fit, least squares
  through 12 noisy samples, moved away from the function as D grew (overfitting);
  it now also gives the best fit to the function itself, which gets ever closer.
- cnn-mnist named the machine's cores beside its training time, not the numba
  threads it ran on.
"""
import re

import numba
import pytest
import numpy as np
from numpy.polynomial import chebyshev as cheb

from nnumba.experiments import cnn, polynomial


def _best_polynomial_mse(degree: int, grid: np.ndarray) -> float:
    """The least-squares polynomial of ``degree`` fitted to the target function itself
    (Chebyshev basis, no noise), and its MSE to the function."""
    t = polynomial.target(grid)
    return float(np.mean((cheb.chebval(grid, cheb.chebfit(grid, t, degree)) - t) ** 2))


def test_polynomial_capacity_shows_the_quoted_stone_weierstrass_claim():
    pytest.importorskip("nnumba_features", reason="the nnumba-features plugin is not "
                                                  "installed: pip install -e plugins/nnumba-features")
    grid = np.linspace(-1, 1, 400)
    result = polynomial.run()
    rows = {int(d): v for d, v in result.numbers["degrees"].items()}
    best = [rows[d]["approximation_mse"] for d in sorted(rows)]
    for d, row in rows.items():  # the same numbers as numpy's own least squares
        ref = _best_polynomial_mse(d, grid)
        if ref > 1e-12:
            assert abs(row["approximation_mse"] - ref) <= 1e-6 * ref
        else:  # at rounding level both: the fit is the function to float64's precision
            assert row["approximation_mse"] < 1e-13
    assert all(b <= a * (1 + 1e-9) for a, b in zip(best, best[1:]))  # ever closer
    assert best[-1] < 1e-10
    # and the fit to the noisy samples is the overfitting the table says it is
    assert rows[max(rows)]["train_mse"] < 1e-20
    assert rows[max(rows)]["mse_to_function"] > rows[3]["mse_to_function"]
    assert "ever closer" in result.table and "overfitting" in result.table


def test_cnn_mnist_states_the_threads_its_timing_used_not_the_machines_cores():
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        result = cnn.run(fast=True, datasets=cnn.DATASETS[:1], epochs=1)
    finally:
        numba.set_num_threads(before)
    line = next(line for line in result.table.splitlines() if "on the CPU" in line)
    assert re.search(r"\b1 thread\(s\)", line), line


def test_chain_rule_experiment_against_the_closed_form_jacobians():
    """The chain-rule slide had no experiment. Each layer's Jacobian from the engine's
    backward passes equals the closed form diag(1 - tanh(s)^2) w, and their product,
    last layer first, the composition's Jacobian computed here by its own central
    differences."""
    from nnumba.experiments import backprop, chain_rule
    result = chain_rule.run()
    model = backprop.mlp()
    x, _ = backprop.sample()
    h, closed = x[0], []
    for linear in model.layers[::2]:
        w, b = linear.weight.value, linear.bias.value
        s = w @ h + b
        closed.append((1 - np.tanh(s) ** 2)[:, None] * w)
        h = np.tanh(s)
    for got, want in zip(result.numbers["layers"], closed):
        np.testing.assert_allclose(np.array(got), want, rtol=1e-12, atol=1e-15)

    def f(v):
        for linear in model.layers[::2]:
            v = np.tanh(linear.weight.value @ v + linear.bias.value)
        return v
    eps = 1e-6
    fd = np.stack([(f(x[0] + eps * e) - f(x[0] - eps * e)) / (2 * eps) for e in np.eye(4)], 1)
    np.testing.assert_allclose(closed[2] @ closed[1] @ closed[0], fd, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(np.array(result.numbers["jacobian"]), fd, rtol=1e-7, atol=1e-10)
    assert result.numbers["errors"]["last_to_first"] < 1e-8
    assert "not defined" in result.table


def test_cnn_mnist_figure_mosaic_places_every_tile():
    """cnn-mnist's figure now shows the learnt first-layer filters and the first test
    images as mosaics: each tile in its place, one pixel of the fill between."""
    from nnumba.experiments.cnn import _mosaic
    tiles = np.arange(2 * 2 * 3, dtype=float).reshape(3, 2, 2)
    mosaic = _mosaic(tiles, 2, fill=-1.0)
    np.testing.assert_array_equal(mosaic[:2, :2], tiles[0])
    np.testing.assert_array_equal(mosaic[:2, 3:5], tiles[1])
    np.testing.assert_array_equal(mosaic[3:5, :2], tiles[2])
    assert (mosaic[2] == -1).all() and (mosaic[:, 2] == -1).all()
    assert np.isnan(_mosaic(tiles, 2)[3:5, 3:5]).all()  # no fourth tile
