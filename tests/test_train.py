"""Trainers against independent references: closed-form gradients, the lecture's
own code, PyTorch's SGD; determinism; clear errors."""
import numpy as np
import pytest

import nnumba
from nnumba.data import load_dataset
from nnumba.errors import DTypeError, LabelError, NonFiniteError
from nnumba.layers import Linear, Tanh
from nnumba.losses import MSE, CrossEntropy, Logistic
from nnumba.train import GDTrainer, SGDTrainer, TrainingDiverged, train_perceptron

rng = np.random.default_rng(2)


def linear_model(d_in, d_out, seed=0):
    return nnumba.Sequential(Linear(d_in, d_out), seed=seed).astype(np.float64)


@pytest.mark.parametrize("batch_size", [1, 7, 50, 1000])
def test_gradient_descent_is_the_exact_full_gradient_step(batch_size):
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 2))
    model = linear_model(4, 2)
    w0, b0 = model.layers[0].weight.value.copy(), model.layers[0].bias.value.copy()
    GDTrainer(model, MSE(), lr=0.1, batch_size=batch_size).fit(x, y, epochs=1)
    # Closed form: d/dW mean((xW^T + b - y)^2) = 2/(N K) r^T x
    r = x @ w0.T + b0 - y
    scale = 2 / r.size
    np.testing.assert_allclose(model.layers[0].weight.value, w0 - 0.1 * scale * r.T @ x, rtol=1e-12)
    np.testing.assert_allclose(model.layers[0].bias.value, b0 - 0.1 * scale * r.sum(0), rtol=1e-12)


def test_gradient_descent_matches_the_lectures_logistic_regression_code():
    x = rng.normal(size=(100, 2))
    y = np.where(x @ [1.0, -2.0] + 0.3 + rng.normal(0, 0.5, 100) > 0, 1.0, -1.0)
    model = linear_model(2, 1)
    lin = model.layers[0]
    w, b = lin.weight.value[0].copy(), float(lin.bias.value[0])
    eta = 1e-1
    trainer = GDTrainer(model, Logistic(reduction="sum"), lr=eta, batch_size=30)
    trainer.fit(x, y, epochs=25)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    for _ in range(25):  # the lecture's code, verbatim in spirit
        u = y * sigmoid(-y * (x.dot(w) + b))
        dw, db = -(x * u.reshape(-1, 1)).sum(0), -u.sum(0)
        w -= eta * dw
        b -= eta * db
    np.testing.assert_allclose(lin.weight.value[0], w, rtol=1e-10)
    np.testing.assert_allclose(lin.bias.value[0], b, rtol=1e-10)


def test_per_sample_sgd_in_order_is_one_update_per_sample():
    x, y = rng.normal(size=(9, 3)), rng.normal(size=(9, 1))
    model = linear_model(3, 1)
    w, b = model.layers[0].weight.value.copy(), model.layers[0].bias.value.copy()
    SGDTrainer(model, MSE(), lr=0.05, batch_size=1, shuffle=False).fit(x, y, epochs=1)
    for xi, yi in zip(x, y):
        r = xi @ w.T + b - yi
        w, b = w - 0.05 * 2 * np.outer(r, xi), b - 0.05 * 2 * r
    np.testing.assert_allclose(model.layers[0].weight.value, w, rtol=1e-12)


def test_same_seed_gives_bit_identical_weights():
    data = load_dataset("mnist-5k").subset(train=600, test=100)

    def run(seed):
        model = nnumba.build("mlp", seed=seed, hidden=32)
        SGDTrainer(model, CrossEntropy(), lr=0.1, momentum=0.9, batch_size=50, seed=seed).fit(
            data.x_train, data.y_train, epochs=2)
        return model.flat_params.copy()

    a, b, c = run(3), run(3), run(4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sgd_with_momentum_and_weight_decay_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = rng.normal(size=(40, 5))
    y = rng.integers(0, 3, 40)
    model = nnumba.Sequential(Linear(5, 8), Tanh(), Linear(8, 3), seed=0).astype(np.float64)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    with torch.no_grad():
        for (_, p), t in zip(model.params(), net.parameters()):
            t.copy_(torch.from_numpy(p.value))
    SGDTrainer(model, CrossEntropy(), lr=0.1, momentum=0.9, weight_decay=1e-3, batch_size=10,
               shuffle=False).fit(x, y, epochs=3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        for i in range(0, 40, 10):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(torch.from_numpy(x[i:i + 10])),
                                              torch.from_numpy(y[i:i + 10])).backward()
            opt.step()
    for (name, p), t in zip(model.params(), net.parameters()):
        np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_mlp_learns_the_embedded_digits():
    data = load_dataset("mnist-5k")
    model = nnumba.build("mlp", seed=0)
    history = SGDTrainer(model, CrossEntropy(), lr=0.1, momentum=0.9, seed=0).fit(
        data.x_train, data.y_train, epochs=3, x_test=data.x_test, y_test=data.y_test)
    assert history.epochs[0]["train_loss"] > history.epochs[-1]["train_loss"]
    assert history.last("test_accuracy") > 0.88


def lecture_perceptron(x, y, nb_epochs_max):
    """The lecture's code, with the bias as a constant feature and the change counts kept."""
    x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    w = np.zeros((x.shape[1],))
    counts = []
    for _ in range(nb_epochs_max):
        nb_changes = 0
        for i in range(x.shape[0]):
            if x[i].dot(w) * y[i] <= 0:
                w = w + y[i] * x[i]
                nb_changes = nb_changes + 1
        counts.append(nb_changes)
        if nb_changes == 0:
            break
    return w, counts


def test_perceptron_is_the_lectures_algorithm_and_separates_0_from_1():
    data = load_dataset("mnist-5k")
    x, y = data.binary(0, 1, "train")
    xt, yt = data.binary(0, 1, "test")
    result = train_perceptron(x, y, max_epochs=20, x_test=xt, y_test=yt)
    w, counts = lecture_perceptron(x.reshape(len(x), -1).astype(np.float64), y, 20)
    assert [r["nb_changes"] for r in result.history] == counts
    np.testing.assert_allclose(np.append(result.w, result.b), w, rtol=1e-12)
    assert result.converged and result.history[-1]["train_error"] == 0
    assert len(result.history) <= 10
    assert "epoch 0 nb_changes" in result.table() and "test_error" in result.table()
    # Its model form predicts the same as the result.
    model = result.to_model()
    assert np.array_equal(model.forward(xt).reshape(-1), result.predict(xt))


def test_perceptron_stops_at_max_epochs_on_xor():
    x = np.array([[0.0, 0], [0, 1], [1, 0], [1, 1]])
    result = train_perceptron(x, np.array([-1, 1, 1, -1]), max_epochs=50)
    assert not result.converged and len(result.history) == 50


def test_divergence_is_reported_with_advice():
    x, y = rng.normal(size=(20, 3)) * 1e3, rng.normal(size=(20, 1)) * 1e3
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        SGDTrainer(model, MSE(), lr=1e3, batch_size=5).fit(x.astype(np.float32),
                                                          y.astype(np.float32), epochs=5)


@pytest.mark.parametrize("size", [1.0, 1e5])
def test_divergence_on_large_inputs_also_says_to_scale_them(size):
    x = (rng.normal(size=(40, 3)) * size).astype(np.float32)
    y = x.sum(axis=1, keepdims=True) / np.float32(size)
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    with pytest.raises(TrainingDiverged, match="lower the learning rate") as caught:
        SGDTrainer(model, MSE(), lr=10.0 / size ** 2 * 1e3, batch_size=5).fit(x, y, epochs=20)
    top = float(np.abs(x).max())
    assert (f"scale the inputs: the largest is {top:.3g}" in str(caught.value)) == (size > 1)


def test_bad_training_data_is_refused_before_any_kernel():
    model = nnumba.build("mlp")
    trainer = SGDTrainer(model, CrossEntropy())
    x = np.zeros((10, 1, 28, 28), np.float32)
    with pytest.raises(LabelError, match="10 inputs but 9 targets"):
        trainer.fit(x, np.zeros(9, int))
    with pytest.raises(DTypeError, match="float64 but the model is float32"):
        trainer.fit(x.astype(np.float64), np.zeros(10, int))
    with pytest.raises(LabelError, match=r"\[0, 10\)"):
        trainer.fit(x, np.full(10, 10))
    with pytest.raises(ValueError, match="batch_size"):
        SGDTrainer(model, CrossEntropy(), batch_size=0)
    x[7, 0, 3, 3] = np.inf
    with pytest.raises(NonFiniteError, match="Flatten #0: input holds NaN or infinity"):
        trainer.fit(x, np.zeros(10, int))


def test_no_layer_computes_an_input_gradient_that_nothing_uses():
    """Flatten has no parameters, so the Linear after it skips its dx GEMM; the
    gradients are those of a model whose first layer is that Linear."""
    x, y = rng.random((16, 784), dtype=np.float32), rng.integers(0, 10, 16)
    model = nnumba.build("mlp", seed=0)
    twin = nnumba.Sequential(*model.copy().layers[1:])
    for m in (model, twin):
        m.zero_grad()
        loss = CrossEntropy()
        loss.forward(m.forward(x), y)
        assert m.backward(loss.backward()) is None
    # steps: Flatten, Linear + ReLU (fused), Linear
    assert [step.needs_input_grad for step in model.steps] == [False, False, True]
    np.testing.assert_array_equal(model.flat_grads, twin.flat_grads)
    model.input_grad = True
    model.forward(x)
    assert all(step.needs_input_grad for step in model.steps)
