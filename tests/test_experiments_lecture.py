"""The slides that were missing, each against an independent computation: a composed
affine map, closed forms, numpy's own pooling and interpolation, finite differences
of a forward pass written in numpy, and PyTorch's autograd where it is installed."""
import numpy as np
import pytest

from nnumba.experiments import affine, backprop, pooling, run_experiment, universal2d
from nnumba.layers import Tanh


# ---- an MLP with an affine sigma is affine --------------------------------------------------
def test_affine_mlp_equals_the_affine_map_found_by_probing_it():
    numbers = run_experiment("mlp-affine").numbers
    w, b = np.array(numbers["W"]), np.array(numbers["B"])
    model = affine.mlp(affine.AffineActivation)
    # An affine map is known from its values at 0 and at the unit vectors.
    d = affine.WIDTHS[0]
    probes = model.predict(np.vstack([np.zeros(d), np.eye(d)]))
    np.testing.assert_allclose(probes[0], b, atol=1e-14)
    np.testing.assert_allclose(probes[1:] - probes[0], w.T, atol=1e-14)
    # ... and the MLP is that map everywhere, to rounding, on points it never saw.
    x = np.random.default_rng(7).normal(0, 5, (500, d))
    np.testing.assert_allclose(model.predict(x), x @ w.T + b, rtol=0, atol=1e-12)
    assert numbers["max_gap"] < 1e-12 and numbers["affine_params"] == d * 3 + 3
    assert numbers["mlp_params"] > 40 * numbers["affine_params"]  # a peculiar parametrization


def test_tanh_mlp_is_not_affine():
    numbers = run_experiment("mlp-affine").numbers
    assert numbers["tanh_relative_gap"] > 0.05
    # Along a line an affine map has zero second differences; the tanh MLP does not.
    model = affine.mlp(Tanh)
    t = np.linspace(-3, 3, 61)[:, None]
    line = t * np.ones(affine.WIDTHS[0])
    assert np.max(np.abs(np.diff(model.predict(line), 2, axis=0))) > 1e-4


# ---- activation functions ------------------------------------------------------------------
def test_activations_are_the_closed_forms_and_their_derivatives():
    numbers = run_experiment("activations").numbers
    for name in ("tanh", "ReLU", "sigmoid", "threshold"):
        assert numbers[name]["max_error_to_formula"] < 1e-14, name
    for name in ("tanh", "ReLU", "sigmoid"):
        assert numbers[name]["max_error_to_finite_differences"] < 1e-7, name
    assert not numbers["threshold"]["has_derivative"]
    # The engine's layers against numpy's own functions and the derivatives in closed form.
    from nnumba.experiments import activations
    x = np.linspace(-4, 4, 801)
    s = 1 / (1 + np.exp(-x))
    expected = {"tanh": (np.tanh(x), 1 - np.tanh(x) ** 2), "sigmoid": (s, s * (1 - s)),
                "ReLU": (np.maximum(x, 0), (x > 0).astype(float))}
    for name, (value, slope) in expected.items():
        cls = activations.ACTIVATIONS[name][0]
        np.testing.assert_allclose(activations.forward(cls, x), value, atol=1e-15)
        np.testing.assert_allclose(activations.derivative(cls, x), slope, atol=1e-15)
    threshold = activations.forward(activations.ACTIVATIONS["threshold"][0], x)
    np.testing.assert_array_equal(threshold, np.where(x >= 0, 1, -1))
    assert numbers["tanh"]["min"] == pytest.approx(np.tanh(-4))


# ---- pooling --------------------------------------------------------------------------------
def test_pooling_is_the_max_and_the_mean_of_each_block_of_two():
    numbers = run_experiment("pooling").numbers
    signal = pooling.SIGNAL
    pairs = [(signal[i], signal[i + 1]) for i in range(0, len(signal) - 1, 2)]
    assert numbers["max"]["output"] == [max(p) for p in pairs]
    assert numbers["average"]["output"] == pytest.approx([(a + b) / 2 for a, b in pairs])
    # The max sends each block's gradient to its larger input, the average half to each.
    expected = np.zeros(len(signal))
    for i, (a, b) in enumerate(pairs):
        expected[2 * i + (b > a)] = 1
    np.testing.assert_array_equal(numbers["max"]["gradient"], expected)
    np.testing.assert_array_equal(numbers["average"]["gradient"], 0.5)
    assert numbers["max"]["gradient_error"] < 1e-8 and numbers["average"]["gradient_error"] < 1e-8


def test_pooling_drops_an_odd_last_sample_like_torch():
    torch = pytest.importorskip("torch")
    signal = np.array([4.0, 1, 7, 7.5, 2, 9, 3])
    t = torch.tensor(signal).reshape(1, 1, -1)
    for cls, reference in ((pooling.MaxPool1d, torch.nn.functional.max_pool1d),
                           (pooling.AvgPool1d, torch.nn.functional.avg_pool1d)):
        y, _ = pooling.pool(cls, signal)
        np.testing.assert_allclose(y, reference(t, 2).numpy().ravel())


# ---- universal approximation in 2-D ----------------------------------------------------------
def test_two_variable_approximation_is_within_the_lectures_bound_and_falls():
    numbers = run_experiment("universal-approximation-2d", fast=True).numbers
    hidden = numbers["hidden"]
    ks = sorted(hidden)
    # A = max |v_m . x + c_m| over the square, at a corner: recomputed here.
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    a = np.max(np.abs(corners @ universal2d.V.T + universal2d.C))
    assert numbers["A"] == a
    for k in ks:
        n = hidden[k]["N"]
        bound = np.sum(np.abs(universal2d.GAMMA)) * (2 * a / (n - 1)) ** 2 / 8
        assert hidden[k]["max_error"] <= bound * (1 + 1e-9), k
    errors = [hidden[k]["max_error"] for k in ks]
    fine = [e for k, e in zip(ks, errors) if hidden[k]["N"] >= 9]
    assert all(b < 0.5 * e for e, b in zip(fine, fine[1:])), errors  # about 1/N^2
    assert errors[-1] < 0.01


@pytest.mark.parametrize("n", [4, 9, 33])
def test_the_relu_network_is_the_sum_of_interpolated_sines(n):
    # The engine's network equals sum_m gamma_m interp(v_m . x + c_m) by numpy's interp.
    x = np.random.default_rng(3).uniform(0, 1, (400, 2))
    a = universal2d.half_width()
    nodes = np.linspace(-a, a, n)
    t = x @ universal2d.V.T + universal2d.C
    expected = sum(g * np.interp(t[:, m], nodes, np.sin(nodes))
                   for m, g in enumerate(universal2d.GAMMA))
    np.testing.assert_allclose(universal2d.network(n).predict(x)[:, 0], expected, atol=1e-12)


# ---- back-propagation ------------------------------------------------------------------------
def _numpy_loss(weights, x, y):
    """The MLP's squared error written in numpy, apart from the engine."""
    h = x
    for w, b in weights:
        h = np.tanh(h @ w.T + b)
    return float(np.sum((h - y) ** 2))


def test_backprop_gradients_are_those_of_a_numpy_forward():
    numbers = run_experiment("backprop", fast=True).numbers
    model = backprop.mlp()
    x, y = backprop.sample()
    linears = [layer.params() for layer in model.layers[::2]]
    weights = [(p["weight"].value.copy(), p["bias"].value.copy()) for p in linears]
    assert numbers["loss"] == pytest.approx(_numpy_loss(weights, x, y), rel=1e-12)
    h = 1e-6
    for l, (w, b) in enumerate(weights, 1):
        for name, array in (("dl_dw", w), ("dl_db", b)):
            fd = np.empty_like(array)
            for i in np.ndindex(array.shape):
                keep = array[i]
                array[i] = keep + h
                up = _numpy_loss(weights, x, y)
                array[i] = keep - h
                down = _numpy_loss(weights, x, y)
                array[i] = keep
                fd[i] = (up - down) / (2 * h)
            got = np.array(numbers["layers"][l][name]).reshape(array.shape)
            np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-9)
        errors = numbers["layers"][l]["vs_finite_differences"]
        assert max(errors.values()) < 1e-6 and numbers["layers"][l]["vs_lecture_formulas"] < 1e-12


def test_backprop_gradients_match_torch_autograd():
    torch = pytest.importorskip("torch")
    numbers = run_experiment("backprop", fast=True).numbers
    model = backprop.mlp()
    x, y = backprop.sample()
    params, h = [], torch.tensor(x)
    for layer in model.layers[::2]:
        p = layer.params()
        w = torch.tensor(p["weight"].value, requires_grad=True)
        b = torch.tensor(p["bias"].value, requires_grad=True)
        params.append((w, b))
        h = torch.tanh(h @ w.T + b)
    ((h - torch.tensor(y)) ** 2).sum().backward()
    for l, (w, b) in enumerate(params, 1):
        np.testing.assert_allclose(numbers["layers"][l]["dl_dw"], w.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(numbers["layers"][l]["dl_db"], b.grad.numpy(), rtol=1e-12)


def test_backward_costs_twice_the_forward_in_flops():
    cost = run_experiment("backprop", fast=True).numbers["cost"]
    batch = cost["batch"]
    # Each Linear: forward 2 B in out + B out; backward: dl/dw 2 B in out, dl/db B out,
    # and dl/dx 2 B in out (the lecture's two products against one), which the engine
    # skips for the first Linear: nothing before it has parameters.
    widths = (784,) + backprop.COST_HIDDEN + (10,)
    for k, ((name, forward, backward), n_in, n_out) in enumerate(zip(
            [r for r in cost["rows"] if r[0] == "Linear"], widths, widths[1:])):
        assert forward == 2 * batch * n_in * n_out + batch * n_out
        assert backward == (2 if k == 0 else 4) * batch * n_in * n_out + batch * n_out
    assert 1.99 < cost["flops_ratio"] < 2.01
    assert cost["skipped_input_gradient_flops"] == 2 * batch * 784 * widths[1]
    assert 1 < cost["run_flops_ratio"] < cost["flops_ratio"]
    assert cost["forward_seconds"] > 0 and cost["backward_seconds"] > 0  # measured, not judged


# ---- the size of a linear layer on images --------------------------------------------------
def test_linear_layer_on_an_image_is_150_gb():
    numbers = run_experiment("image-linear-size").numbers
    for side, entry in numbers.items():
        assert entry["linear_params"] == (side * side * 3) ** 2
        assert entry["linear_bytes"] == 4 * (side * side * 3) ** 2  # float32
        assert entry["conv_params"] == 3 * 3 * 3 * 3 + 3
    assert f"{numbers[256]['linear_params']:.3g}" == "3.87e+10"  # the lecture's figure
    assert 150e9 <= numbers[256]["linear_bytes"] < 160e9
