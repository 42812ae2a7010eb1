"""Gradient descent: the engine follows the lecture's own logistic-regression code step
for step, and the step-size slides show what they say: on a non-convex loss the
start and the step decide the minimum, on a convex one they cannot."""
import numpy as np
import pytest

from nnumba.experiments import descent, logistic, run_experiment


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
    losses, path = [], [np.append(w, b)]
    for _ in range(nb_iterations):
        losses.append(lecture_loss(x, y, w, b))
        dw, db = lecture_gradient(x, y, w, b)
        w = w - eta * dw
        b = b - eta * db
        path.append(np.append(w, b))
    return np.array(losses), np.array(path)


# ---- logistic regression, the lecture's listing ---------------------------------------------
def test_engine_follows_the_lectures_code_in_2d():
    x, y, w0 = logistic.two_classes()
    assert x.shape == (100, 2)
    losses, path = logistic.descend(x, y, w0, eta=0.1, iterations=300)
    ref_losses, ref_path = lecture_descent(x, y, w0.copy(), 0.0, 0.1, 300)
    np.testing.assert_allclose(path, ref_path, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-9)


def test_logistic_regression_reaches_the_minimum_and_draws_the_boundary(tmp_path):
    result = run_experiment("logistic-gd", out_dir=tmp_path, fast=True)
    numbers = result.numbers
    x, y, _ = logistic.two_classes()
    # BFGS's minimum is one: the lecture's gradient vanishes there.
    w_star, b_star = np.array(numbers["minimum"]["w"]), numbers["minimum"]["b"]
    dw, db = lecture_gradient(x, y, w_star, b_star)
    assert np.max(np.abs(dw)) < 1e-5 and abs(db) < 1e-5
    assert numbers["eta"] == 0.1 and numbers["rises"] == 0  # every step lowers the loss
    assert abs(numbers["gap"]) < 1e-9
    np.testing.assert_allclose(numbers["path"][-1], [*w_star, b_star], rtol=1e-4, atol=1e-6)
    # The boundary is the optimum's: it errs only on the points where the clouds overlap.
    optimum_error = np.mean(np.where(x @ w_star + b_star >= 0, 1, -1) != y)
    assert numbers["train_error"] == optimum_error < 0.2
    if result.figures:
        assert result.figures[0].name == "logistic-gd.png"


# ---- the step-size slides ------------------------------------------------------------------
def test_nonconvex_gradient_is_the_derivative():
    w = np.linspace(-5, 5, 101)
    h = 1e-6
    fd = (descent.nonconvex(w + h) - descent.nonconvex(w - h)) / (2 * h)
    np.testing.assert_allclose(descent.nonconvex_gradient(w), fd, atol=1e-8)


def test_start_and_step_decide_the_minimum_on_the_nonconvex_loss():
    numbers = run_experiment("gradient-descent", fast=True).numbers["non-convex"]
    from scipy.optimize import minimize_scalar
    local = minimize_scalar(descent.nonconvex, bracket=(1.0, 1.5, 2.0)).x
    best = minimize_scalar(descent.nonconvex, bracket=(-3.0, -2.0, -1.0)).x
    assert descent.nonconvex(best) < descent.nonconvex(local)  # which is global
    np.testing.assert_allclose(sorted(numbers["minima"]), sorted([best, local]), atol=1e-6)
    small_a, small_b, large_a = numbers["runs"]
    assert small_a["eta"] == small_b["eta"] == 0.125 and large_a["eta"] == 0.5
    assert small_a["w0"] == large_a["w0"] != small_b["w0"]
    # eta = 0.125: the start decides.
    assert abs(small_a["final_w"] - local) < 1e-4 and small_a["ends"] == "a local minimum"
    assert abs(small_b["final_w"] - best) < 1e-4 and small_b["ends"] == "the global minimum"
    # eta = 0.5 from the same start: too large for the sharp well, it ends in the other.
    assert abs(large_a["final_w"] - best) < 1e-4
    curvature = (descent.nonconvex(local + 1e-4) - 2 * descent.nonconvex(local)
                 + descent.nonconvex(local - 1e-4)) / 1e-8
    assert 0.125 * curvature < 2 < 0.5 * curvature  # stable for one step, not the other


def test_on_the_convex_loss_the_start_does_not_matter():
    numbers = run_experiment("gradient-descent", fast=True).numbers["convex"]
    x, y = descent.two_classes()
    from scipy.optimize import minimize_scalar
    w_star = minimize_scalar(lambda w: lecture_loss(x, y, np.array([w]), 0.0)).x
    assert numbers["minima"] == pytest.approx([w_star], abs=1e-5)
    first, second, large = numbers["runs"]
    assert first["w0"] != second["w0"]
    for run in (first, second):
        assert abs(run["final_w"] - w_star) < 1e-4 and run["ends"] == "the minimum"
    # eta = 0.5 overshoots for ever: no minimum reached, the loss rising again and again.
    assert large["ends"] == "no minimum" and large["rises"] >= 10


def test_convex_runs_are_the_lectures_gradient_step():
    x, y = descent.two_classes()
    path = descent.descend_logistic(x, y, eta=0.125, w0=-2.0, steps=20)
    w, expected = np.array([-2.0]), [-2.0]
    for _ in range(20):
        dw, _ = lecture_gradient(x, y, w, 0.0)
        w = w - 0.125 * dw
        expected.append(w[0])
    np.testing.assert_allclose(path, expected, rtol=1e-10, atol=1e-12)


def test_each_step_is_the_minimum_of_the_slides_surrogate():
    """The slide: argmin of L~_{w_t}(w) = L(w_t) + L'(w_t)(w - w_t) + (w - w_t)^2/(2 eta) is
    w_t - eta L'(w_t). scipy's argmin of the surrogate (from a finite-difference slope)
    must be where each run went next."""
    numbers = run_experiment("gradient-descent", fast=True).numbers
    for case in ("non-convex", "convex"):
        for run in numbers[case]["runs"]:
            path = run["path"]
            assert len(run["surrogate_argmins"]) == descent.SURROGATE_STEPS
            for t, found in enumerate(run["surrogate_argmins"]):
                assert abs(found - path[t + 1]) < 1e-6 * max(1.0, abs(path[t + 1])), (case, t)
    assert numbers["surrogate_gap"] < 1e-5


def test_the_surrogate_touches_the_loss_and_has_the_slides_curvature():
    loss = descent.nonconvex
    w_t, eta = 0.7, 0.25
    parabola = descent.surrogate(loss, w_t, eta)
    assert float(parabola(w_t)) == pytest.approx(float(loss(w_t)), abs=1e-12)
    h = 1e-4
    slope = (parabola(w_t + h) - parabola(w_t - h)) / (2 * h)
    assert slope == pytest.approx(descent.nonconvex_gradient(w_t), abs=1e-8)
    curvature = (parabola(w_t + h) - 2 * parabola(w_t) + parabola(w_t - h)) / h ** 2
    assert curvature == pytest.approx(1 / eta, rel=1e-5)


def test_the_network_diagram_draws_every_weight_by_its_sign():
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure
    from nnumba.experiments.figures import NEGATIVE, POSITIVE, network
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((3, 4)), rng.standard_normal((2, 3))]
    ax = Figure().subplots()
    network(ax, (4, 3, 2), weights)
    lines = ax.get_lines()
    assert len(lines) == 4 * 3 + 3 * 2  # one edge per weight
    signs = np.concatenate([w.ravel() for w in weights]) > 0
    for line, positive in zip(lines, signs):
        assert to_rgba(line.get_color())[:3] == to_rgba(POSITIVE if positive else NEGATIVE)[:3]
    widths = [line.get_linewidth() for line in lines[:12]]
    assert np.argmax(widths) == np.argmax(np.abs(weights[0]).ravel())  # the largest |w|
