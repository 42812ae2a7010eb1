"""Logistic regression by gradient descent: the engine follows the lecture's own
code step for step, and eta = 0.5 overshoots where eta = 0.125 descends."""
import numpy as np
import pytest

from nnumba.experiments import logistic, run_experiment


# The lecture's code, verbatim but for the names of numpy and the loop's bookkeeping.
def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lecture_loss(x, y, w, b):
    return - np.log(sigmoid(y * (x.dot(w) + b))).sum()


def lecture_gradient(x, y, w, b):
    u = y * sigmoid(- y * (x.dot(w) + b))
    v = x * u.reshape(-1, 1)
    return - v.sum(0), - u.sum(0)


def lecture_descent(x, y, w, b, eta, nb_iterations):
    losses, path = [], [(w[0], b)]
    for _ in range(nb_iterations):
        losses.append(lecture_loss(x, y, w, b))
        dw, db = lecture_gradient(x, y, w, b)
        w = w - eta * dw
        b = b - eta * db
        path.append((w[0], b))
    return np.array(losses), np.array(path)


@pytest.mark.parametrize("eta", logistic.ETAS)
def test_engine_follows_the_lectures_code(eta):
    x, y, w0 = logistic.two_classes()
    losses, path = logistic.descend(x, y, w0, eta, iterations=100)
    ref_losses, ref_path = lecture_descent(x, y, np.array([w0]), 0.0, eta, 100)
    # eta = 0.5 bounces around: rounding differences grow, so compare its first steps.
    steps = 100 if eta < 0.5 else 25
    np.testing.assert_allclose(path[:steps + 1], ref_path[:steps + 1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(losses[:steps], ref_losses[:steps], rtol=1e-9)


def test_small_eta_descends_steadily_and_large_eta_overshoots():
    result = run_experiment("logistic-gd", fast=True)
    etas = result.numbers["etas"]
    best = result.numbers["minimum"]["loss"]
    x, y, _ = logistic.two_classes()
    assert len(x) == 100
    # The minimum from BFGS is a minimum: the loss's gradient vanishes there.
    w_star, b_star = result.numbers["minimum"]["w"], result.numbers["minimum"]["b"]
    dw, db = lecture_gradient(x, y, np.array([w_star]), b_star)
    assert abs(dw[0]) < 1e-5 and abs(db) < 1e-5
    for eta in (0.1, 0.125):
        assert etas[eta]["increases"] == 0  # every step lowers the loss
        assert etas[eta]["gap"] < 1e-8
    assert etas[0.5]["increases"] >= 10  # the loss goes up again and again
    assert etas[0.5]["gap"] > 1.0  # and after 100 steps it is still far from the minimum
    # The larger of the stable steps gets there sooner.
    half = 30
    assert etas[0.125]["losses"][half] < etas[0.1]["losses"][half]
    # eta = 0.5 overshoots: successive steps in b flip sign much of the time.
    steps_b = np.diff(np.array(etas[0.5]["path"])[:, 1])
    assert np.mean(np.sign(steps_b[1:]) != np.sign(steps_b[:-1])) > 0.3
    assert best < min(etas[0.5]["losses"])
