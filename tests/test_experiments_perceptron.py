"""The lecture's claims about threshold units, the perceptron, its bound, xor and the SVM."""
import numpy as np
import pytest

from nnumba.data import write_idx
from nnumba.experiments import bound, run_experiment, svm
from nnumba.train import train_perceptron
from nnumba.experiments.common import geometric_margin, linearly_separable


def test_threshold_units_compute_and_or_not_with_the_lectures_weights():
    result = run_experiment("threshold-logic")
    assert result.numbers["correct"] == {"or": True, "and": True, "not u": True, "xor": True}
    # Inputs (u, v) = 00, 01, 10, 11; the truth tables written out, not recomputed.
    assert result.numbers["outputs"] == {"or": [0, 1, 1, 1], "and": [0, 0, 0, 1],
                                         "not u": [1, 1, 0, 0], "xor": [0, 1, 1, 0]}
    # xor = and(or, not(and)): four units fired, and the column says so.
    assert result.numbers["xor_units"] == ["or", "and", "not", "and"]
    assert "xor (4 units)" in result.table


def test_perceptron_separates_embedded_zeros_and_ones_within_ten_epochs():
    numbers = run_experiment("perceptron-mnist").numbers["mnist-5k"]
    assert numbers["converged"] and numbers["epochs"] <= 10
    assert numbers["final_train_error"] == 0.0
    assert numbers["final_test_error"] <= 0.01
    history = numbers["history"]
    assert history[-1]["nb_changes"] == 0 and all(r["nb_changes"] > 0 for r in history[:-1])
    assert [r["epoch"] for r in history] == list(range(len(history)))


def test_perceptron_mnist_says_why_its_table_is_shorter_than_the_lectures():
    result = run_experiment("perceptron-mnist")
    epochs = result.numbers["mnist-5k"]["epochs"]
    note = next(n for n in result.notes if "the lecture's table" in n)
    assert "9 epochs" in note and "12,665 train" in note  # MNIST's 5,923 0s + 6,742 1s
    assert f"takes {epochs} epochs" in note and "--data-dir" in note


def test_perceptron_mnist_reads_a_full_mnist_folder(tmp_path):
    # A folder in the standard layout (here the embedded digits again), as --data-dir takes.
    from nnumba.data import load_dataset
    data = load_dataset("mnist-5k")
    for name, array in [("train-images-idx3-ubyte", data.x_train),
                        ("t10k-images-idx3-ubyte", data.x_test)]:
        write_idx(tmp_path / name, np.round(array[:, 0] * 255).astype(np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", data.y_train.astype(np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", data.y_test.astype(np.uint8))
    result = run_experiment("perceptron-mnist", data_dir=str(tmp_path))
    assert set(result.numbers) == {"mnist-5k", "mnist"}
    assert result.numbers["mnist"]["converged"]
    assert result.numbers["mnist"]["history"] == result.numbers["mnist-5k"]["history"]
    assert "mnist: 800 train / 200 test" in result.table


def test_convergence_bound_holds_and_more_margin_means_fewer_updates():
    result = run_experiment("perceptron-bound", fast=True)
    runs = result.numbers["runs"]
    assert result.numbers["holds"]
    for run in runs:
        # Recompute R and gamma from the data, apart from the experiment's own numbers.
        x, y, w_star = bound.separable_data(run["gamma"], n=100, seed=run["seed"])
        assert np.all(y * (x @ w_star) >= run["gamma"] / 2)  # the margin asked is there
        radius2 = np.max(np.sum(x ** 2, axis=1)) + 1  # the bias input 1 counts in R
        gamma = 2 * np.min(y * (x @ w_star))
        assert run["converged"] and run["updates"] <= np.floor(4 * radius2 / gamma ** 2)
    mean_updates = {g: np.mean([r["updates"] for r in runs if r["gamma"] == g])
                    for g in bound.MARGINS}
    assert mean_updates[bound.MARGINS[-1]] < mean_updates[bound.MARGINS[0]] / 4


def test_xor_is_not_separable_raw_and_is_after_phi():
    pytest.importorskip("nnumba_features", reason="the nnumba-features plugin is not installed")
    numbers = run_experiment("xor", fast=True).numbers
    for data in ("4 corners", "noisy corners"):
        raw, phi = numbers[f"{data} / raw"], numbers[f"{data} / Phi"]
        assert not raw["separable"] and not raw["converged"] and raw["train_error"] > 0
        assert phi["separable"] and phi["converged"] and phi["train_error"] == 0
    # The LP verdicts themselves, on the lecture's four points.
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    y = np.array([-1, 1, 1, -1])
    assert not linearly_separable(x, y)
    assert linearly_separable(np.column_stack([x, x[:, 0] * x[:, 1]]), y)
    assert linearly_separable(x, np.array([-1, 1, 1, 1]))  # or is separable


def _max_margin(x, y):
    """The hard-margin SVM by scipy's SLSQP: min ||w||^2 s.t. y (w.x + b) >= 1."""
    from scipy.optimize import minimize
    constraint = {"type": "ineq", "fun": lambda p: y * (x @ p[:2] + p[2]) - 1,
                  "jac": lambda p: y[:, None] * np.column_stack([x, np.ones(len(x))])}
    res = minimize(lambda p: p[:2] @ p[:2], np.array([1.0, 1.0, 0.0]),
                   jac=lambda p: np.append(2 * p[:2], 0), constraints=[constraint],
                   method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
    assert res.success, res.message
    return 1 / np.linalg.norm(res.x[:2])


def test_svm_boundary_has_a_wider_margin_than_the_perceptrons():
    result = run_experiment("svm-vs-perceptron", fast=True)
    numbers = result.numbers
    perceptron = numbers["perceptron"]["margin"]
    smallest_lambda = numbers["svm 0.001"]
    x, y = svm.separable_2d(n=100)
    best = _max_margin(x, y)
    assert 0 < perceptron < 0.5 * best  # the perceptron stops at the first separator
    # The SVM gets most of the best possible margin, and cannot beat it.
    assert 0.8 * best <= smallest_lambda["margin"] <= best * (1 + 1e-6)
    w, b = np.array(smallest_lambda["w"]), smallest_lambda["b"]
    assert geometric_margin(w, b, x, y) == pytest.approx(smallest_lambda["margin"])


# ---- "The bound does not change if the population is scaled" -------------------------------
def test_scaling_the_population_changes_neither_the_bound_nor_k_without_a_bias():
    rows = bound.scaling(100)
    proof = [r for r in rows if not r["bias"]]
    assert [r["scale"] for r in proof] == list(bound.SCALES)
    assert len({r["bound"] for r in proof}) == 1 and len({r["updates"] for r in proof}) == 1
    assert all(r["converged"] and r["updates"] <= r["bound"] for r in rows)
    one = next(r for r in proof if r["scale"] == 1.0)
    for r in proof:  # R and gamma scale with the samples (closed form)
        assert r["R"] == pytest.approx(r["scale"] * one["R"], rel=1e-12)
        assert r["gamma"] == pytest.approx(r["scale"] * one["gamma"], rel=1e-12)
    # With the constant input 1 appended, R does not scale: the bound moves.
    with_bias = [r for r in rows if r["bias"]]
    assert len({r["bound"] for r in with_bias}) == len(bound.SCALES)


def test_the_perceptron_without_bias_scales_its_weights_with_the_samples():
    """w_k is a sum of y_n x_n, so scaling x by c scales every w_k by c: the same updates
    (c a power of two, so that the scaled sums are exact)."""
    x, y, _ = bound.separable_data(0.1, n=100, seed=1)
    base = train_perceptron(x, y, max_epochs=500, bias=False)
    assert base.converged and base.b == 0.0
    for c in (2.0 ** -6, 2.0 ** 5):
        scaled = train_perceptron(c * x, y, max_epochs=500, bias=False)
        assert scaled.updates == base.updates and scaled.b == 0.0
        np.testing.assert_array_equal(scaled.w, c * base.w)


def test_the_perceptron_without_bias_is_sklearns_without_intercept():
    sklearn = pytest.importorskip("sklearn.linear_model")
    import warnings
    x, y, _ = bound.separable_data(0.05, n=150, seed=2)
    ours = train_perceptron(x, y, max_epochs=20, bias=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sklearn.Perceptron(shuffle=False, eta0=1.0, alpha=0.0, tol=None, max_iter=20,
                                    fit_intercept=False).fit(x, y)
    np.testing.assert_allclose(ours.w, theirs.coef_[0], rtol=1e-12, atol=1e-12)
    assert theirs.intercept_[0] == 0.0 and ours.b == 0.0
    from nnumba.sklearn import PerceptronClassifier
    est = PerceptronClassifier(max_epochs=20, fit_intercept=False).fit(x, y)
    np.testing.assert_allclose(est.coef_[0], theirs.coef_[0], rtol=1e-12, atol=1e-12)
    assert est.intercept_[0] == 0.0
    with pytest.raises(Exception, match="fit_intercept"):
        PerceptronClassifier(fit_intercept="no").fit(x, y)
