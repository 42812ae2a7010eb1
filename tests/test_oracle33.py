"""Oracle 33: the lecture's algorithms as nnumba implements them, against independent
references (the lecture's own numpy listings, scipy, scikit-learn, torch, finite
differences); svm-vs-perceptron prints the exact SVM optimum beside gradient
descent's."""
import numpy as np
import pytest

from nnumba.layers import Conv2d, Linear, ReLU, Tanh
from nnumba.losses import CrossEntropy, Logistic, MSE
from nnumba.model import Sequential
from nnumba.train import GDTrainer, SGDTrainer, train_perceptron


def lecture_perceptron(x, y, nb_epochs_max, bias=True):
    """The slide's train_perceptron, with the bias as a constant input 1 (last)."""
    if bias:
        x = np.hstack([x, np.ones((len(x), 1))])
    w, rows = np.zeros(x.shape[1]), []
    for _ in range(nb_epochs_max):
        nb = 0
        for i in range(x.shape[0]):
            if x[i].dot(w) * y[i] <= 0:
                w = w + y[i] * x[i]
                nb += 1
        rows.append(nb)
        if nb == 0:
            break
    return w, rows


@pytest.mark.parametrize("bias", [True, False])
def test_perceptron_is_the_lectures_loop(bias):
    rng = np.random.default_rng(1)
    for _ in range(10):
        n, d = int(rng.integers(5, 40)), int(rng.integers(1, 6))
        x = rng.integers(-3, 4, (n, d)).astype(float)  # integers: every sum exact
        y = np.where(x @ rng.normal(size=d) + 0.5 >= 0, 1.0, -1.0)
        for epochs in (1, 3, 200):
            r = train_perceptron(x, y, epochs, bias=bias)
            w, rows = lecture_perceptron(x, y, epochs, bias)
            assert np.array_equal(np.append(r.w, r.b) if bias else r.w, w)
            assert [h["nb_changes"] for h in r.history] == rows
            assert r.updates == sum(rows) and r.converged == (rows[-1] == 0)


def test_perceptron_classifier_is_one_lecture_loop_per_class():
    pytest.importorskip("sklearn")
    from nnumba.sklearn import PerceptronClassifier
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, (30, 4)).astype(float)
    y = rng.integers(0, 3, 30)
    with pytest.warns(Warning):  # not separable: max_epochs reached
        clf = PerceptronClassifier(max_epochs=7).fit(x, y)
    for c in range(3):
        w, _ = lecture_perceptron(x, np.where(y == c, 1.0, -1.0), 7)
        assert np.array_equal(np.append(clf.coef_[c], clf.intercept_[c]), w)


def test_perceptron_mistake_bound_with_known_margin():
    rng = np.random.default_rng(3)
    for gamma in (0.05, 0.2, 0.5):
        ws = rng.normal(size=3)
        ws /= np.linalg.norm(ws)
        x = rng.normal(size=(300, 3))
        s = x @ ws
        x, y = x[np.abs(s) >= gamma / 2], np.sign(s[np.abs(s) >= gamma / 2])
        r = train_perceptron(x, y, 100_000, bias=False)
        R = np.linalg.norm(x, axis=1).max()
        assert r.converged and r.updates <= np.floor(4 * R ** 2 / gamma ** 2)
        assert r.updates == sum(lecture_perceptron(x, y, 100_000, False)[1])


@pytest.mark.parametrize("reduction,wd,batch", [("sum", 0.0, 7), ("mean", 0.1, 50),
                                                ("sum", 0.1, 1000)])
def test_gd_logistic_is_the_lectures_gradient(reduction, wd, batch):
    rng = np.random.default_rng(4)
    n = 50
    x = rng.normal(size=(n, 3))
    y = np.where(x @ [1, -1, 0.5] + 0.3 * rng.normal(size=n) > 0, 1.0, -1.0)
    w0 = rng.normal(size=3)
    model = Sequential(Linear(3, 1)).astype(np.float64)
    model.flat_params[...] = [*w0, 0.0]
    GDTrainer(model, Logistic(reduction=reduction), lr=0.05, weight_decay=wd,
              batch_size=batch).fit(x, y, epochs=12)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    w, b = w0.copy(), 0.0
    for _ in range(12):
        u = y * sig(-y * (x @ w + b))
        gw, gb = -(x * u[:, None]).sum(0), -u.sum()
        if reduction == "mean":
            gw, gb = gw / n, gb / n
        w, b = w - 0.05 * (gw + wd * w), b - 0.05 * (gb + wd * b)
    np.testing.assert_allclose(model.flat_params, np.append(w, b), rtol=0, atol=1e-12)


def test_gd_logistic_optimum_is_bfgs():
    from scipy.optimize import minimize
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 2))
    y = np.where(x @ [1.0, -1.0] + rng.normal(size=40) > 0, 1.0, -1.0)  # overlapping
    model = Sequential(Linear(2, 1)).astype(np.float64)
    model.flat_params[...] = 0
    GDTrainer(model, Logistic(), lr=0.5, weight_decay=0.3, batch_size=1000).fit(x, y, epochs=2000)
    obj = lambda p: np.logaddexp(0, -y * (x @ p[:2] + p[2])).mean() + 0.15 * p @ p  # noqa
    ref = minimize(obj, np.zeros(3), method="BFGS", options={"gtol": 1e-12}).x
    np.testing.assert_allclose(model.flat_params, ref, atol=1e-7)


@pytest.mark.parametrize("act", [Tanh, ReLU])
def test_mlp_gradient_is_finite_differences(act):
    rng = np.random.default_rng(6)
    model = Sequential(Linear(3, 5), act(), Linear(5, 4), act(), Linear(4, 2), seed=0
                       ).astype(np.float64)
    model.flat_params[...] = rng.normal(size=model.flat_params.size)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    loss = MSE()
    model.zero_grad()
    loss.forward(model.forward(x), y)
    model.backward(loss.backward())
    g, p = model.flat_grads.copy(), model.flat_params.copy()

    def at(q):
        model.flat_params[...] = q
        return loss.forward(model.forward(x), y)
    fd = np.array([(at(p + e) - at(p - e)) / 2e-6 for e in np.eye(p.size) * 1e-6])
    model.flat_params[...] = p
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-7 * max(1, np.abs(fd).max()))


def test_sgd_momentum_weight_decay_is_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    model = Sequential(Linear(4, 6), Tanh(), Linear(6, 5), ReLU(), Linear(5, 3), seed=1
                       ).astype(np.float64)
    tm = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 5),
                             torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
    with torch.no_grad():
        for tp, (_, p) in zip(tm.parameters(), model.params()):
            tp.copy_(torch.from_numpy(p.value.reshape(tp.shape)))
    x, y = rng.normal(size=(23, 4)), rng.integers(0, 3, 23)
    SGDTrainer(model, CrossEntropy(), lr=0.05, momentum=0.9, weight_decay=0.01, batch_size=7,
               shuffle=False).fit(x, y, epochs=3)
    opt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    for _ in range(3):
        for s in range(0, 23, 7):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(tm(torch.from_numpy(x[s:s + 7])),
                                              torch.from_numpy(y[s:s + 7])).backward()
            opt.step()
    ref = np.concatenate([p.detach().numpy().ravel() for p in tm.parameters()])
    np.testing.assert_allclose(model.flat_params, ref, rtol=0, atol=1e-12)


def test_conv2d_is_scipy_correlate2d_valid():
    from scipy.signal import correlate2d
    rng = np.random.default_rng(8)
    model = Sequential(Conv2d(2, 3, (3, 2)), seed=0).astype(np.float64)
    conv = model.layers[0]
    x = rng.normal(size=(2, 2, 7, 6))
    out = model.forward(x)
    w, b = conv.weight.value.reshape(3, 2, 3, 2), conv.bias.value
    ref = np.array([[sum(correlate2d(x[n, c], w[d, c], mode="valid") for c in range(2)) + b[d]
                     for d in range(3)] for n in range(2)])
    assert out.shape == (2, 3, 7 - 3 + 1, 6 - 2 + 1)  # (H - h + 1) x (W - w + 1)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-13)


def test_backprop_experiment_numbers_are_torch_autograd():
    torch = pytest.importorskip("torch")
    from nnumba.experiments import backprop
    model, (x, y) = backprop.mlp(0), backprop.sample(1)
    h = torch.from_numpy(x)
    ps = [torch.from_numpy(p.value.copy()) for _, p in model.params()]
    for i in range(0, len(ps), 2):
        h = torch.tanh(h @ ps[i].reshape(-1, h.shape[1]).T + ps[i + 1])
    assert abs(float(((h - torch.from_numpy(y)) ** 2).sum()) - 0.786715) < 1e-6  # as printed


def test_svm_experiment_prints_the_exact_optimum_beside_gd():
    """svm-vs-perceptron printed the margin of a subgradient run that stopped short of
    the optimum as the SVM's; it now prints the exact optimum beside it.  scikit-learn's
    SVC with C = 1 / (2 lam N) minimises the same lam ||w||^2 + mean hinge."""
    pytest.importorskip("sklearn")
    from sklearn.svm import SVC
    from nnumba.experiments import svm
    result = svm.run(fast=True)
    x, y = svm.separable_2d(n=100)
    for lam in (1e-2, 1e-3):
        s = SVC(kernel="linear", C=1 / (2 * lam * len(x)), tol=1e-12).fit(x, y)
        w, b = s.coef_[0], s.intercept_[0]
        margin = np.min(y * (x @ w + b)) / np.linalg.norm(w)
        objective = lam * w @ w + np.mean(np.maximum(0, 1 - y * (x @ w + b)))
        numbers = result.numbers[f"svm {lam:g}"]
        assert abs(numbers["exact"]["margin"] - margin) < 5e-5, lam  # printed to 4 decimals
        assert numbers["exact"]["objective"] == pytest.approx(objective, rel=1e-6)
        # gradient descent is above the optimum, and near it
        assert objective - 1e-9 <= numbers["objective"] <= objective * 1.01
        assert f"{numbers['exact']['margin']:.4f}" in result.table
