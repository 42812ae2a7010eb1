"""sgd-local-minima: "The stochastic behavior of this procedure helps evade local
minima", on gradient-descent's non-convex loss written as a mean over samples."""
import numpy as np
import pytest

from nnumba.experiments import descent, escape, run_experiment


def test_the_per_sample_losses_average_to_the_loss():
    a = escape.offsets()
    assert abs(a.mean()) < 1e-12 and a.std() == pytest.approx(escape.NOISE, rel=1e-12)
    w = np.linspace(-5, 5, 41)
    np.testing.assert_allclose(escape.sample_losses(w, a).mean(axis=0), descent.nonconvex(w),
                               atol=1e-12)


def test_each_update_follows_one_sample_loss_and_an_epoch_visits_every_sample_once():
    a = escape.offsets()
    path, means = escape.descend(2.5, 1, a, updates=2 * escape.SAMPLES, runs=3, seed=5)
    h = 1e-6
    for run in range(3):
        # each epoch: every a_n once (without replacement)
        for epoch in range(2):
            used = means[epoch * escape.SAMPLES:(epoch + 1) * escape.SAMPLES, run]
            np.testing.assert_array_equal(np.sort(used), np.sort(a))
        for t in range(10):
            n = int(np.argmin(np.abs(a - means[t, run])))
            w = path[t, run]
            slope = (escape.sample_losses(w + h, a[n:n + 1]) -
                     escape.sample_losses(w - h, a[n:n + 1]))[0, 0] / (2 * h)
            assert path[t + 1, run] == pytest.approx(w - escape.ETA * slope, abs=1e-7)


def test_the_whole_set_as_one_batch_is_gradient_descent():
    a = escape.offsets()
    path, means = escape.descend(2.5, escape.SAMPLES, a, updates=100, runs=2)
    np.testing.assert_allclose(np.abs(means).max(), 0, atol=1e-12)
    np.testing.assert_allclose(path[:, 0], descent.descend_nonconvex(escape.ETA, 2.5, 100),
                               atol=1e-12)


def test_small_batches_evade_the_local_minimum_that_gradient_descent_keeps():
    numbers = run_experiment("sgd-local-minima", fast=True).numbers
    from scipy.optimize import minimize_scalar
    local = minimize_scalar(descent.nonconvex, bracket=(1.0, 1.5, 2.0)).x
    best = minimize_scalar(descent.nonconvex, bracket=(-3.0, -2.0, -1.0)).x
    assert numbers["local"] == pytest.approx(local, abs=1e-6)
    assert numbers["global"] == pytest.approx(best, abs=1e-6)
    assert best < numbers["barrier"] < local
    assert descent.nonconvex(numbers["barrier"]) > max(descent.nonconvex(local),
                                                       descent.nonconvex(best))
    stuck, held = numbers["starts"][2.5], numbers["starts"][0.0]
    # gradient descent from 2.5 settles in the local minimum, every run alike
    assert stuck[escape.SAMPLES]["ended_global"] == 0
    assert max(abs(w - local) for w in stuck[escape.SAMPLES]["final_w"]) < 1e-6
    # per-sample SGD escapes; the share falls as the batch (and its noise) grows
    assert stuck[1]["ended_global"] >= 0.9
    shares = [stuck[b]["ended_global"] for b in escape.BATCHES]
    assert all(later <= earlier for earlier, later in zip(shares, shares[1:])), shares
    # the deep global well holds the runs that start there
    assert all(held[b]["ended_global"] >= 0.95 for b in escape.BATCHES)
    for b in escape.BATCHES:  # the noise is what sampling without replacement predicts
        n = escape.SAMPLES
        closed = escape.NOISE * np.sqrt((n - b) / (b * (n - 1))) if b < n else 0.0
        assert stuck[b]["noise_sd"] == pytest.approx(closed, rel=1e-12)
        assert stuck[b]["noise_sd_measured"] == pytest.approx(closed, rel=0.05, abs=1e-12)


def test_a_batch_that_does_not_divide_the_samples_is_refused():
    with pytest.raises(ValueError, match="does not divide"):
        escape.descend(2.5, 3, escape.offsets(), updates=10, runs=1)
