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
    products = run_experiment("random-products", fast=True).numbers["products"]
    counts = sorted(products)
    assert counts[0] == 0 and products[0]["features"] == 784
    assert products[counts[-1]]["features"] == 784 + counts[-1]
    raw, most = products[0]["train_error"], products[counts[-1]]["train_error"]
    assert raw > 0 and not products[0]["converged"]  # raw pixels: 8 vs rest not separated
    assert most < raw / 2
    assert products[counts[-1]]["converged"] and most == 0  # more features than samples


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
    raw, lecture = numbers["raw pixels"], numbers["HOG 8x8 cells, 9 bins"]
    fine = numbers["HOG 4x4 cells, 9 bins"]
    assert lecture["features"] == 3 * 3 * 9 and raw["features"] == 784
    # Ten times fewer inputs, about the same accuracy; finer cells beat the pixels.
    assert lecture["test_accuracy"] > raw["test_accuracy"] - 0.03
    assert fine["test_accuracy"] > raw["test_accuracy"] + 0.03
    assert lecture["test_accuracy"] > 0.8
