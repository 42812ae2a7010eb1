"""Peer oracle 20 (no mismatch found): whole training runs of a Conv3d model against
torch.optim.SGD, the perceptron without intercept against scikit-learn's, the mini-batch
gradient spread against torch's per-sample gradients, the gradient-descent surrogate's
argmin against its closed form, and the scaling table against a plain numpy perceptron."""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
import nnumba  # noqa: E402


def _t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("dtype,bound", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("which", ["sgd", "gd"])
def test_conv3d_model_trains_as_torch_sgd(dtype, bound, which):
    from nnumba.layers.activation import ReLU
    from nnumba.layers.conv3d import Conv3d
    from nnumba.layers.linear import Linear
    from nnumba.layers.shape import Flatten
    from nnumba.losses import CrossEntropy
    from nnumba.train import GDTrainer, SGDTrainer
    C, T, H, W, D = 2, 5, 6, 7, 3
    k, s, p = (4, 3, 2), (2, 2, 1), (2, 0, 1)   # kd > sd: the input gradient folds ceil(kd/sd)
    conv = Conv3d(C, D, k, stride=s, padding=p)
    nf = int(np.prod(conv.output_shape((C, T, H, W))))
    m = nnumba.Sequential(conv, ReLU(), Flatten(), Linear(nf, 3), seed=1).astype(dtype)
    P = [_t(q.value).requires_grad_(True) for _, q in m.params()]
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(12, C, T, H, W)).astype(dtype), rng.integers(0, 3, 12)
    lr, mu, wd, bs = 0.1, 0.9, 1e-3, 4
    if which == "sgd":
        tr = SGDTrainer(m, CrossEntropy(), lr=lr, momentum=mu, weight_decay=wd, batch_size=bs,
                        shuffle=False)
    else:
        tr = GDTrainer(m, CrossEntropy(), lr=lr, momentum=mu, weight_decay=wd, batch_size=bs)
    tr.fit(X, Y, epochs=3)
    opt = torch.optim.SGD(P, lr=lr, momentum=mu, weight_decay=wd)
    Xt, Yt = _t(X), torch.tensor(Y)
    chunks = [slice(i, i + bs) for i in range(0, 12, bs)] if which == "sgd" else [slice(0, 12)]
    for _ in range(3):
        for sl in chunks:
            opt.zero_grad()
            h = F.relu(F.conv3d(Xt[sl], P[0], P[1], stride=s, padding=p)).flatten(1)
            F.cross_entropy(F.linear(h, P[2], P[3]), Yt[sl]).backward()
            opt.step()
    for (_, q), r in zip(m.params(), P):
        assert _rel(q.value, r.detach().numpy()) < bound


def test_perceptron_without_intercept_multiclass_equals_sklearn():
    from sklearn.datasets import load_iris, load_wine
    from sklearn.linear_model import Perceptron
    from nnumba.sklearn import PerceptronClassifier
    for X, y in (load_iris(return_X_y=True), load_wine(return_X_y=True)):
        for me in (1, 5, 50):
            ours = PerceptronClassifier(max_epochs=me, fit_intercept=False).fit(X, y)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sk = Perceptron(fit_intercept=False, shuffle=False, eta0=1, alpha=0, tol=None,
                                max_iter=me).fit(X, y)
            np.testing.assert_array_equal(ours.coef_, sk.coef_)
            np.testing.assert_array_equal(ours.intercept_, 0.0)
            np.testing.assert_array_equal(ours.decision_function(X), sk.decision_function(X))


def test_gradient_spread_against_torch_per_sample_gradients():
    from torch.func import grad, vmap
    from nnumba.data import load_dataset
    from nnumba.experiments.minibatch import gradient_spread
    data = load_dataset("mnist-5k")
    n, draws = 120, 5
    x, y = data.x_train[:n], data.y_train[:n]
    res = gradient_spread(x, y, (1, 10, n), draws=draws, seed=0)
    W1, b1, W2, b2 = [_t(p.value) for _, p in nnumba.build("mlp", seed=0).params()]
    X, Y = _t(x).reshape(n, -1), torch.tensor(np.asarray(y)).long()

    def loss1(ps, xi, yi):
        o = torch.relu(xi @ ps[0].T + ps[1]) @ ps[2].T + ps[3]
        return F.cross_entropy(o[None], yi[None])
    G = vmap(grad(loss1), in_dims=(None, 0, 0))((W1, b1, W2, b2), X, Y)
    G = torch.cat([g.reshape(n, -1) for g in G], 1).numpy()
    g = G.mean(0)
    sigma2 = float(np.mean(np.sum((G - g) ** 2, 1)))           # two-pass variance
    assert res["sigma2"] == pytest.approx(sigma2, rel=1e-12)
    assert res["gradient_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-12)
    assert n not in res["batches"]
    rng = np.random.default_rng(0)
    for b in (1, 10):
        d = [G[rng.choice(n, size=b, replace=False)].mean(0) - g for _ in range(draws)]
        e = res["batches"][b]
        assert e["variance"] == pytest.approx(np.mean([np.sum(v ** 2) for v in d]), rel=1e-12)
        S2 = np.sum((G - g) ** 2) / (n - 1)                       # textbook: S^2/b (1 - b/n)
        assert e["closed_form"] == pytest.approx(S2 / b * (1 - b / n), rel=1e-12)
        assert e["bias"] == pytest.approx(np.linalg.norm(np.mean(d, 0)), rel=1e-10)


def test_surrogate_argmin_is_the_closed_form_step_to_brents_precision():
    """argmin L~ = w_t - eta L'(w_t) with L' analytic; scipy's Brent finds a minimum only
    to ~sqrt(eps) of the step's scale, so the bound is relative to the step."""
    from scipy.special import expit
    from nnumba.experiments import descent as D
    x, y = D.two_classes()
    z = y * x[:, 0]
    dL = lambda w: float(np.sum(-z * expit(-z * w)))  # noqa: E731
    for w_t, eta in ((-2.0, 0.125), (6.0, 0.125), (-2.0, 0.5), (22.48, 0.5), (0.3, 0.125)):
        step = w_t - eta * dL(w_t)
        got = D.surrogate_argmin(lambda w: D.logistic_loss(x, y, w), w_t, eta)
        assert abs(got - step) < 1e-6 * max(1.0, abs(step - w_t), abs(step))


def test_bound_scaling_table_against_a_numpy_perceptron():
    from nnumba.experiments import bound as B
    n = 60
    x, y, ws = B.separable_data(B.SCALED_MARGIN, n=n, seed=0)
    for r in B.scaling(n):
        X = r["scale"] * x
        Xa = np.hstack([X, np.ones((n, 1))]) if r["bias"] else X
        R = np.sqrt(np.max(np.sum(Xa ** 2, 1)))
        gamma = 2 * np.min(y * (Xa @ (np.append(ws, 0) if r["bias"] else ws)))
        bound = int(np.floor(4 * R ** 2 / gamma ** 2))
        w, k = np.zeros(Xa.shape[1]), 0
        for _ in range(bound + 1):
            changes = 0
            for xi, yi in zip(Xa, y):
                if yi * (xi @ w) <= 0:
                    w, changes = w + yi * xi, changes + 1
            k += changes
            if not changes:
                break
        assert (r["R"], r["bound"], r["updates"], r["converged"]) == \
            (pytest.approx(R, rel=1e-15), bound, k, True)
        assert r["gamma"] == pytest.approx(gamma, rel=1e-14)
