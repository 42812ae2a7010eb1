"""The lecture's second half as experiments: each claim, checked against an independent
reference where there is one (numpy, closed forms, the lecture's own numbers)."""
import json

import numpy as np
import pytest

from nnumba.cli import main
from nnumba.data import datasets as data_module
from nnumba.data import load_dataset, write_idx
from nnumba.experiments import (conv1d, list_experiments, replicated, run_experiment,
                                tanh_relu, universal)
from nnumba.experiments.figures import figure_class
from nnumba.train import GDTrainer, SGDTrainer

SECOND_HALF = ["mlp-affine", "activations", "tanh-vs-relu", "universal-approximation",
               "universal-approximation-2d", "gradient-descent", "logistic-gd", "backprop", "chain-rule",
               "replicated-set", "sgd-local-minima", "minibatch-loss", "image-linear-size",
               "conv1d-operators", "pooling", "cnn-mnist"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HAS_MATPLOTLIB = figure_class() is not None


def run_fast(name, tmp_path_factory, **options):
    """The experiment with --fast; its PNG where matplotlib is there to draw it."""
    out = tmp_path_factory.mktemp(name)
    result = run_experiment(name, out_dir=out, fast=True, **options)
    if HAS_MATPLOTLIB:
        assert [p.name for p in result.figures] == [f"{name}.png"]
        assert result.figures[0].read_bytes()[:8] == PNG_MAGIC
    else:
        assert result.figures == [] and any("matplotlib" in n for n in result.notes)
    return result


def test_listed_after_the_first_half_in_the_lectures_order():
    names = [e.name for e in list_experiments()]
    assert names[-len(SECOND_HALF):] == SECOND_HALF
    assert next(e for e in list_experiments()
                if e.name == "cnn-mnist").options == ("data_dir", "lecture")


# ---- universal approximation --------------------------------------------------------------
def test_universal_approximation_error_falls_as_k_grows(tmp_path_factory):
    hidden = run_fast("universal-approximation", tmp_path_factory).numbers["hidden"]
    ks = sorted(hidden)
    errors = [hidden[k]["max_error"] for k in ks]
    assert all(b < 0.8 * a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.03
    assert [hidden[k]["parameters"] for k in ks] == [3 * k for k in ks]  # w, b, omega
    # The reference column, K ReLUs set by the lecture's construction, is numpy's interpolant.
    grid = np.linspace(-np.pi, np.pi, 4001)
    for k in ks:
        nodes = np.linspace(-np.pi, np.pi, k)
        by_numpy = np.max(np.abs(np.interp(grid, nodes, np.sin(nodes)) - np.sin(grid)))
        assert hidden[k]["interpolant_max_error"] == pytest.approx(by_numpy, abs=1e-12)


@pytest.mark.parametrize("k", [2, 5, 17])
def test_the_lectures_construction_is_a_relu_network_equal_to_the_interpolant(k):
    # sum_n alpha_n sigma(x - a_n) with K ReLUs is numpy's piecewise-linear interpolant.
    grid = np.linspace(-np.pi, np.pi, 1001)
    model = universal.interpolant_network(k)
    nodes = np.linspace(-np.pi, np.pi, k)
    np.testing.assert_allclose(model.predict(grid[:, None])[:, 0],
                               np.interp(grid, nodes, np.sin(nodes)), atol=1e-12)


# ---- tanh against ReLU ----------------------------------------------------------------------
def test_tanh_and_relu_both_fit_the_spirals(tmp_path_factory):
    numbers = run_fast("tanh-vs-relu", tmp_path_factory).numbers["activations"]
    for activation in ("Tanh", "ReLU"):
        assert numbers[activation]["train_error"] <= 0.02
        assert numbers[activation]["test_error"] <= 0.04
        assert numbers[activation]["losses"][-1] < 0.05 * numbers[activation]["losses"][0]


def test_relu_regions_are_polygons_and_tanh_regions_are_smooth():
    # Along a line, a ReLU network is piecewise affine (zero second differences but at a
    # few kinks); a tanh network bends everywhere.
    x, y = tanh_relu.spirals(100)
    t = np.linspace(-1, 1, 2001)
    line = np.column_stack([t, 0.3 * t + 0.1])
    bent = {}
    for activation in ("Tanh", "ReLU"):
        model, _ = tanh_relu.train(activation, x, y, epochs=3)
        second = np.abs(np.diff(tanh_relu.margin(model, line), 2))
        bent[activation] = np.mean(second > 1e-9)
    assert bent["ReLU"] < 0.1
    assert bent["Tanh"] > 0.9


# ---- the replicated set -----------------------------------------------------------------------
def test_replicated_set_gd_over_n_is_sgd_over_m_with_k_eta(tmp_path_factory):
    numbers = run_fast("replicated-set", tmp_path_factory).numbers
    assert numbers["N"] == numbers["K"] * numbers["M"]
    assert numbers["max_gap_B"] < 1e-10 and numbers["max_gap_C"] < 1e-10
    losses = numbers["losses"]
    assert losses["A"][-1] < losses["A"][0] - 1  # the parameters did move
    np.testing.assert_allclose(losses["B"], losses["A"], rtol=1e-12)


def test_replicated_identity_is_sharp():
    # The identity, run by hand: GD over N with eta against one step of K eta over M ...
    m, k, steps, eta = 20, 4, 6, 1e-3
    x, y, x_rep, y_rep = replicated.replicated_set(m, k)
    a = replicated.trajectory(GDTrainer, x_rep, y_rep, eta, steps, batch_size=30)
    b = replicated.trajectory(GDTrainer, x, y, k * eta, steps, batch_size=m)
    c = replicated.trajectory(SGDTrainer, x_rep, y_rep, k * eta, 1, batch_size=m, shuffle=False)
    assert np.max(np.abs(a - b)) < 1e-10
    assert np.max(np.abs(a[k] - c[1])) < 1e-10  # one SGD epoch over the copies: K steps
    moved = np.max(np.abs(a[-1] - a[0]))
    assert moved > 1e-3
    # ... and a control: step eta over M (not K eta) is a different trajectory.
    wrong = replicated.trajectory(GDTrainer, x, y, eta, steps, batch_size=m)
    assert np.max(np.abs(a - wrong)) > 0.5 * moved


# ---- mini-batch size and loss reduction ------------------------------------------------------
def test_losses_fall_with_samples_visited_and_smaller_batches_go_further(tmp_path_factory):
    result = run_fast("minibatch-loss", tmp_path_factory)
    numbers = result.numbers
    # The lecture's listing steps outside the inner loop with dloss(y, ...): said, not hidden.
    from nnumba.experiments import minibatch
    assert minibatch.LISTING_NOTE in result.notes
    assert "dloss(y, output)" in minibatch.__doc__ and "outside the inner loop" in minibatch.__doc__
    n, epochs, batches = numbers["n"], numbers["epochs"], numbers["batches"]
    sizes = sorted(batches)
    assert sizes[0] == 1 and sizes[-1] == n  # per-sample SGD ... exact GD
    for b in sizes:
        curve = dict(batches[b]["curve"])
        passes = [curve[0]] + [curve[p * n] for p in range(1, epochs + 1)]
        assert batches[b]["updates"] == epochs * n // b
        if b == 1:  # per-sample SGD is noisy: the loss falls far, not at every pass
            assert max(passes[1:]) < 0.5 * passes[0], passes
        else:
            assert all(later < earlier for earlier, later in zip(passes, passes[1:])), (b, passes)
    gd = [loss for _, loss in batches[n]["curve"]]
    assert all(later < earlier for earlier, later in zip(gd, gd[1:]))  # every GD step helps
    # For the same samples visited, the smaller the batch, the lower the loss.
    finals = [batches[b]["final_loss"] for b in sizes]
    assert all(a < b for a, b in zip(finals, finals[1:])), finals


# ---- the 1-D convolution ---------------------------------------------------------------------
def test_conv1d_the_lectures_example_is_exact(tmp_path_factory):
    numbers = run_fast("conv1d-operators", tmp_path_factory).numbers
    assert numbers["ramp_output"] == [0, 0, 0, 1, 1, 1, 1, 0, 0, 0]
    x = np.array([0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4.0])
    np.testing.assert_array_equal(conv1d.convolve(x, [-1.0, 1.0]), np.diff(x))
    # The derivative estimates are within their Taylor bounds (sin's derivatives <= 1).
    h = numbers["step"]
    assert numbers["first_derivative_error"] <= h ** 2 / 24 * (1 + 1e-6)
    assert numbers["second_derivative_error"] <= h ** 2 / 12 * (1 + 1e-6)
    # The template matcher finds the template's places, not the decoys.
    assert numbers["peaks_found"] == list(conv1d.TEMPLATE_AT)


def test_conv1d_is_numpys_correlation_and_translation_invariant():
    signal, kernel = conv1d.template_signal(seed=3), conv1d.matcher_kernel()
    response = conv1d.convolve(signal, kernel)
    np.testing.assert_allclose(response, np.correlate(signal, kernel, "valid"), atol=1e-12)
    assert np.argmax(response) in conv1d.TEMPLATE_AT
    shifted = conv1d.convolve(np.roll(signal, 5), kernel)
    np.testing.assert_allclose(shifted[5:], response[:-5], atol=1e-12)


# ---- the lecture's CNN --------------------------------------------------------------------------
def test_cnn_learns_the_embedded_subset_and_fashion_mnist_when_installed(tmp_path_factory):
    result = run_fast("cnn-mnist", tmp_path_factory)
    numbers = result.numbers["runs"]
    assert "mnist-5k" in numbers
    for name, run in numbers.items():
        errors = run["test_errors"]
        assert len(errors) == run["epochs"] >= 2
        assert errors[-1] < errors[0] and errors[-1] < 0.5, (name, errors)
        assert run["train_losses"][-1] < run["train_losses"][0]
        # The error and time are printed beside the lecture's claim, from this run.
        assert f"here, {name}: test error {100 * run['test_error']:.2f}%" in result.table
    assert "the lecture: test error about 1.00%" in result.table
    assert "fashion-mnist" in numbers or any("Fashion-MNIST skipped" in note
                                             for note in result.notes)
    # The default settings are not the listing's, and the output says so.
    assert result.numbers["settings"]["momentum"] == 0.9 and not result.numbers["lecture"]
    assert any("differ from the listing" in note for note in result.notes)


def test_cnn_lecture_settings_are_the_listings(capsys):
    # --lecture reaches the experiment: plain SGD at lr 1e-2, as torch.optim.SGD(..., lr=1e-2).
    assert main(["experiment", "run", "cnn-mnist", "--lecture", "--fast", "--json"]) == 0
    captured = capsys.readouterr()
    numbers = json.loads(captured.out)["cnn-mnist"]
    assert numbers["lecture"] is True
    assert numbers["settings"]["lr"] == 0.01 and numbers["settings"]["momentum"] == 0.0
    assert "the listing's optimiser (plain SGD, lr 0.01)" in captured.err
    assert "SGD lr 0.01, momentum 0" in captured.err


def test_cnn_without_fashion_mnist_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv("NNUMBA_FASHION_MNIST", raising=False)
    monkeypatch.setattr(data_module, "SYSTEM_FASHION_MNIST", tmp_path / "absent")
    result = run_experiment("cnn-mnist", fast=True, datasets=("fashion-mnist",))
    assert result.numbers["runs"] == {}
    assert any("apt-get install dataset-fashion-mnist" in note for note in result.notes)


def test_cnn_runs_on_a_full_mnist_folder_given_with_data_dir(tmp_path, capsys):
    # A stand-in for the full MNIST: the 4 standard files, cut from the embedded subset.
    data = load_dataset("mnist-5k")

    def images(x):
        return np.round(x[:, 0] * 255).astype(np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images(data.x_train[:300]))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", data.y_train[:300].astype(np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images(data.x_test[:100]))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", data.y_test[:100].astype(np.uint8))
    result = run_experiment("cnn-mnist", fast=True, datasets=(), data_dir=str(tmp_path),
                            epochs=1)
    runs = result.numbers["runs"]
    assert list(runs) == ["mnist"]
    assert runs["mnist"]["train"] == 300 and runs["mnist"]["test"] == 100
    assert "MNIST given with --data-dir, the lecture's data (300 of its 60,000" in result.table


def test_cli_runs_a_second_half_experiment(tmp_path, capsys):
    assert main(["experiment", "run", "conv1d-operators", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(x) (-1, 1) = (0, 0, 0, 1, 1, 1, 1, 0, 0, 0)" in out
    if HAS_MATPLOTLIB:
        assert (tmp_path / "conv1d-operators.png").read_bytes()[:8] == PNG_MAGIC
