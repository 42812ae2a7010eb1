"""Feature design, the lecture's claims: polynomials add capacity, random products
lower the training error, the radius copes with label noise, HOG summarises digits."""
import numpy as np
import pytest

from nnumba.experiments import knn, polynomial, run_experiment

pytest.importorskip("nnumba_features", reason="the nnumba-features plugin is not installed: "
                                              "pip install -e plugins/nnumba-features")


def test_polynomial_capacity_grows_with_the_degree():
    result = run_experiment("polynomial-capacity", fast=True)
    degrees = result.numbers["degrees"]
    mse = [degrees[d]["train_mse"] for d in sorted(degrees)]
    # Nested models: the training error can only fall (up to rounding) ...
    assert all(b <= a * (1 + 1e-9) + 1e-15 for a, b in zip(mse, mse[1:]))
    assert mse[-1] < 1e-12 * mse[0]  # ... to an exact fit with n parameters for n points
    assert max(degrees) == result.numbers["n"] - 1
    # and the least-squares fit is numpy's polyfit, computed apart from the features.
    x, y = polynomial.sample()
    for degree in (1, 3, 5):
        alpha, phi = polynomial.fit(degree, x, y)
        np.testing.assert_allclose(alpha, np.polynomial.polynomial.polyfit(x, y, degree),
                                   rtol=1e-8, atol=1e-10)


def test_more_random_products_lower_the_training_error():
    numbers = run_experiment("random-products", fast=True).numbers
    products, seeds = numbers["products"], numbers["seeds"]
    counts = sorted(products)
    assert counts[0] == 0 and products[0]["features"] == 784
    assert products[counts[-1]]["features"] == 784 + counts[-1]
    for count in counts:  # every seed was run, and the mean is theirs
        runs = products[count]["runs"]
        assert len(runs) == seeds >= 3
        assert products[count]["train_error"] == pytest.approx(
            np.mean([r["train_error"] for r in runs]))
    raw = [r["train_error"] for r in products[0]["runs"]]
    most = [r["train_error"] for r in products[counts[-1]]["runs"]]
    assert min(raw) > 0 and products[0]["converged"] == 0  # raw pixels: 8 vs rest not separated
    assert max(most) == 0  # more features than samples: every seed fits the training set
    # The seeds differ (other pairs, other order): the spread is real, not one run repeated.
    assert len({r["test_error"] for r in products[counts[1]]["runs"]}) > 1


def test_random_products_errors_are_the_perceptrons_last_iterate():
    # The experiment's errors for one seed are those of train_perceptron itself, computed
    # here apart: the same order, the same pairs, the last iterate's predictions.
    from nnumba.data import load_dataset
    from nnumba.experiments import products
    from nnumba.train import train_perceptron
    data = load_dataset("mnist-5k").subset(train=300, test=100)
    x, y = products.eight_vs_rest(data, "train")
    x_test, y_test = products.eight_vs_rest(data, "test")
    got = products.errors(x, y, x_test, y_test, count=0, epochs=5, seed=2)
    order = np.random.default_rng(2).permutation(len(x))
    fit = train_perceptron(x[order], y[order], max_epochs=5)
    assert got["train_error"] == pytest.approx(np.mean(fit.predict(x) != y))
    assert got["test_error"] == pytest.approx(np.mean(fit.predict(x_test) != y_test))


def test_radius_copes_with_label_noise_better_than_coordinates():
    numbers = run_experiment("knn-radius", fast=True).numbers
    errors = numbers["errors"]

    def error(noise, k, feature):
        return errors[f"{noise}/{k}"][feature]
    for k in (5, 11, 25):
        assert error(0.2, k, "radius") < error(0.2, k, "coordinates") - 0.03
    # Robustness: from clean to 30% flipped labels the best error rises far less.
    def best(noise, feature):
        return min(error(noise, k, feature) for k in numbers["ks"])
    assert best(0.3, "radius") - best(0.0, "radius") < 0.5 * (
        best(0.3, "coordinates") - best(0.0, "coordinates"))
    # With 1-NN the nearest label is flipped as often whatever the feature: no free lunch.
    assert error(0.3, 1, "radius") > 0.2 and error(0.3, 1, "coordinates") > 0.2


def test_knn_task_has_the_stated_symmetry_and_noise():
    x, y = knn.radial_data(4000, 0.0, seed=0)
    assert abs(np.mean(y == 1) - 0.5) < 0.03  # the disk covers half the square
    _, noisy = knn.radial_data(4000, 0.2, seed=0)
    assert np.mean(noisy != y) == pytest.approx(0.2, abs=0.02)


def test_hog_with_a_linear_classifier_against_raw_pixels():
    numbers = run_experiment("hog", fast=True).numbers
    assert numbers["normalization"] == "block"
    variants = numbers["variants"]
    raw, lecture = variants["raw pixels"], variants["HOG 8x8 cells, block norm"]
    per_cell, fine = variants["HOG 8x8 cells, cell norm"], variants["HOG 4x4 cells, block norm"]
    tiled = variants["HOG 7x7 cells, block norm"]
    # 3 x 3 cells: 2 x 2 blocks of 2 x 2 cells of 9 bins; per cell, 3 x 3 x 9.
    assert lecture["features"] == 2 * 2 * 4 * 9 and per_cell["features"] == 3 * 3 * 9
    assert raw["features"] == 784 and fine["features"] == 6 * 6 * 4 * 9
    # Cells that tile the digit beat the pixels from fewer inputs; the lecture's 8x8 cells,
    # which leave a 4-pixel border out, come within a few points of them.
    assert tiled["test_accuracy"] > raw["test_accuracy"] + 0.03
    assert fine["test_accuracy"] > raw["test_accuracy"] + 0.03
    assert lecture["test_accuracy"] > raw["test_accuracy"] - 0.05
    assert lecture["test_accuracy"] > 0.8


def _l2_hys(v, clip=0.2, eps=1e-5):
    v = v / np.sqrt(np.sum(v ** 2) + eps ** 2)
    v = np.minimum(v, clip)
    return v / np.sqrt(np.sum(v ** 2) + eps ** 2)


def test_block_normalization_is_dalal_and_triggs_l2_hys():
    from nnumba.experiments import hog
    rng = np.random.default_rng(0)
    cells = rng.exponential(1.0, (2, 4, 3, 9))
    cells[1, 0, 0] = 0  # an empty cell
    got = hog.block_normalize(cells)
    # Written out block by block, from the definition: the 2 x 2 cells of each block,
    # concatenated in (row, column) order, normalised with L2-Hys.
    expected = [np.concatenate([_l2_hys(cells[n, by:by + 2, bx:bx + 2].reshape(-1))
                                for by in range(3) for bx in range(2)]) for n in range(2)]
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(got.reshape(2, 6, 36), axis=-1), 1, rtol=1e-6)
    with pytest.raises(ValueError, match="no block"):
        hog.block_normalize(cells[:, :1])
    with pytest.raises(ValueError, match="normalization must be"):
        hog.hog_features(np.zeros((1, 1, 28, 28), np.float32), 8, "blocks")
