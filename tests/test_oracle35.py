"""Oracle 35: seeded regression oracles for the losses, nnumba.SGD and the trainers in
float64 against torch (F.cross_entropy, F.mse_loss, F.binary_cross_entropy_with_logits,
relu closed forms, torch.optim.SGD, a hand-written torch loop) and closed forms; and what
the README and PerceptronCriterion's docstring now say of GDTrainer's summed loss and the
perceptron criterion's kink."""
import numpy as np
import pytest

import nnumba
from nnumba.layers import Linear, ReLU, Tanh
from nnumba.losses import MSE, CrossEntropy, Hinge, Logistic, PerceptronCriterion

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = 1e-13


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def _logits(rng, n, c):
    kind = rng.integers(6)
    if kind == 0:
        return rng.normal(size=(n, c)) * 10.0 ** rng.uniform(-3, 4)
    if kind == 1:
        return np.full((n, c), rng.uniform(-1e4, 1e4))           # all equal
    if kind == 2:
        z = rng.normal(size=(n, c))
        z[np.arange(n), rng.integers(c, size=n)] = rng.choice([-1, 1]) * 1e4  # one huge
        return z
    if kind == 3:
        return rng.uniform(-1e4, 1e4, size=(n, c))
    if kind == 4:
        return rng.normal(size=(n, c)) + 1e4
    return rng.normal(size=(n, c)) * 1e-8


@pytest.mark.parametrize("seed", range(4))
def test_cross_entropy_and_mse_against_torch(seed):
    rng = np.random.default_rng(seed)
    for it in range(40):
        n = int(rng.choice([1, 2, 3, 7, 64]))
        red = ("mean", "sum")[it % 2]
        w = float(rng.choice([1.0, 0.5, -2.0, 3.7]))
        c = int(rng.choice([1, 2, 3, 10, 100]))
        z, y = _logits(rng, n, c), rng.integers(c, size=n)
        y[:] = c - 1 if it % 5 == 0 else (0 if it % 7 == 0 else y)
        L = CrossEntropy(red)
        v, g = L.forward(z, y), L.backward(w)
        zt = torch.tensor(z, requires_grad=True)
        lt = F.cross_entropy(zt, torch.tensor(y), reduction=red)
        (w * lt).backward()
        assert abs(v - lt.item()) <= TOL * max(abs(lt.item()), 1e-300) or v == lt.item() == 0
        assert np.max(np.abs(g - zt.grad.numpy())) <= TOL * max(np.max(np.abs(zt.grad.numpy())), 1e-300)
        shape = [(n,), (n, 1), (n, 3), (n, 2, 2), (n, 10)][it % 5]
        yh = rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 4)
        k = int(np.prod(shape[1:]))
        t = np.eye(k)[rng.integers(k, size=n)].reshape(shape) if it % 4 == 0 else \
            rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 4)   # one-hot or values
        L = MSE(red)
        v, g = L.forward(yh, t), L.backward(w)
        yt = torch.tensor(yh, requires_grad=True)
        lt = F.mse_loss(yt, torch.tensor(t), reduction=red)
        (w * lt).backward()
        assert v == pytest.approx(lt.item(), rel=TOL)
        assert rel(g, yt.grad.numpy()) <= TOL


@pytest.mark.parametrize("seed", range(4))
def test_sign_losses_against_closed_forms_and_torch(seed):
    from scipy.special import expit
    rng = np.random.default_rng(100 + seed)
    for it in range(40):
        n = int(rng.choice([1, 2, 3, 7, 64]))
        red = ("mean", "sum")[it % 2]
        scale = 1 / n if red == "mean" else 1.0
        w = float(rng.choice([1.0, 0.5, -2.0, 3.7]))
        shape = [(n,), (n, 1)][(it // 2) % 2]
        s = rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 4)
        if it % 4 == 1:
            s = rng.choice([-1e4, 1e4, -700.0, 700.0, 36.7, -36.7], size=shape)
        lab = rng.choice([-1.0, 1.0], size=shape if it % 3 else (n,))
        if it % 6 == 0:
            lab = lab.astype(np.int64)
        yf, sf = lab.reshape(-1).astype(float), s.reshape(-1)
        # Logistic: -log sigmoid(y s) = softplus(-y s); torch's BCE-with-logits on (y+1)/2
        L = Logistic(red)
        v, g = L.forward(s, lab), L.backward(w).reshape(-1)
        per = np.logaddexp(0, -yf * sf)
        assert v == pytest.approx(per.mean() if red == "mean" else per.sum(), rel=TOL)
        np.testing.assert_allclose(g, -yf * expit(-yf * sf) * scale * w, rtol=TOL, atol=1e-300)
        st = torch.tensor(sf, requires_grad=True)
        lt = F.binary_cross_entropy_with_logits(st, torch.tensor((yf + 1) / 2), reduction=red)
        (w * lt).backward()
        assert abs(v - lt.item()) <= 1e-14 * max(1.0, abs(v))     # torch loses tiny values
        assert np.max(np.abs(g - st.grad.numpy())) <= 1e-15 * abs(w) * scale
        # Hinge (margin 1) and the perceptron criterion (margin 0): relu(margin - y s)
        for loss, margin in ((Hinge(reduction=red), 1.0), (PerceptronCriterion(red), 0.0)):
            v, g = loss.forward(s, lab), loss.backward(w).reshape(-1)
            m = margin - yf * sf
            per = np.maximum(m, 0)
            assert v == pytest.approx(per.mean() if red == "mean" else per.sum(), rel=TOL, abs=0)
            np.testing.assert_array_equal(g, np.where(m > 0, -yf * scale * w, 0.0))


SCHEDULES = {
    "momentum": [dict(lr=0.1, momentum=0.9)] * 6,
    "momentum and weight decay": [dict(lr=0.05, momentum=0.5, weight_decay=0.01)] * 6,
    "weight decay at momentum 0": [dict(lr=0.05, weight_decay=0.1)] * 6,
    "momentum switched on after steps at 0": [dict(lr=0.1, weight_decay=0.05)] * 3
    + [dict(lr=0.1, momentum=0.9, weight_decay=0.05)] * 4,
    "momentum on, off, on": [dict(lr=0.1, momentum=0.9)] * 3 + [dict(lr=0.1, momentum=0.0)] * 2
    + [dict(lr=0.1, momentum=0.5)] * 3,
    "lr changed between steps": [dict(lr=lr, momentum=0.9, weight_decay=0.01)
                                 for lr in (0.1, 0.05, 0.0, 1.0, 0.01, 3.0)],
    "weight decay changed": [dict(lr=0.1, momentum=0.3, weight_decay=wd) for wd in (0, 0.1, 0, 1)],
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_sgd_steps_against_torch_optim_sgd(name):
    for seed in range(5):
        rng = np.random.default_rng(seed)
        m = nnumba.Sequential(Linear(3, 4), ReLU(), Linear(4, 2), seed=seed).astype(np.float64)
        p = torch.tensor(m.flat_params.copy(), requires_grad=True)
        sch = [{"momentum": 0.0, "weight_decay": 0.0, **s} for s in SCHEDULES[name]]
        opt, topt = nnumba.SGD(m, **sch[0]), torch.optim.SGD([p], **sch[0])
        for s in sch:
            for key, value in s.items():
                setattr(opt, key, value)
                topt.param_groups[0][key] = value
            g = rng.normal(size=p.shape) * 10.0 ** rng.uniform(-3, 2)
            m.flat_grads[:] = g
            p.grad = torch.tensor(g)
            opt.step()
            topt.step()
            assert rel(m.flat_params, p.detach().numpy()) <= 1e-12


def _torch_run(P, x, y, lossname, red, lam, act, gd, bs, epochs, lr, momentum, wd, drop_last):
    def fwd(h):
        for i in range(0, len(P), 2):
            h = h @ P[i].T + P[i + 1]
            h = act(h) if i + 2 < len(P) else h
        return h

    def objective(xb, yb):
        out = fwd(xb)
        rd = (lambda v: v.mean()) if red == "mean" else (lambda v: v.sum())
        if lossname == "CrossEntropy":
            val = F.cross_entropy(out, yb, reduction=red)
        elif lossname == "MSE":
            val = F.mse_loss(out, yb, reduction=red)
        elif lossname == "Logistic":
            val = rd(F.softplus(-yb * out.reshape(-1)))
        else:
            val = rd(torch.relu(1.0 - yb * out.reshape(-1)))
        return val + (lam * sum((P[i] ** 2).sum() for i in range(0, len(P), 2)) if lam else 0.0)

    opt = torch.optim.SGD(P, lr=lr, momentum=momentum, weight_decay=wd)
    X, Y, n = torch.tensor(x), torch.tensor(y), len(x)
    for _ in range(epochs):
        stop = n - n % bs if drop_last else n
        for s in ([0] if gd else range(0, stop, bs)):
            opt.zero_grad()
            sl = slice(None) if gd else slice(s, s + bs)
            objective(X[sl], Y[sl]).backward()
            opt.step()
    return [p.detach().numpy() for p in P]


TRAINS = [
    dict(lossname="CrossEntropy"),
    dict(lossname="CrossEntropy", red="sum", lr=0.02, momentum=0.9, wd=0.01),
    dict(lossname="CrossEntropy", drop_last=True, momentum=0.5),
    dict(lossname="CrossEntropy", bs=50),
    dict(lossname="MSE", momentum=0.9),
    dict(lossname="MSE", red="sum", lr=0.01, drop_last=True),
    dict(lossname="Logistic", hidden=(), momentum=0.9),
    dict(lossname="Logistic", red="sum", act="tanh"),
    dict(lossname="Hinge", lam=0.1, hidden=()),
    dict(lossname="Hinge", lam=0.05, wd=0.01, momentum=0.9, red="sum", lr=0.02),
    dict(lossname="CrossEntropy", gd=True),
    dict(lossname="CrossEntropy", gd=True, red="sum", lr=0.01, bs=7, momentum=0.9, wd=0.01),
    dict(lossname="MSE", gd=True, bs=1),
    dict(lossname="Hinge", gd=True, lam=0.1, hidden=()),
]


@pytest.mark.parametrize("case", TRAINS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_trainers_in_order_against_a_torch_loop(case):
    kw = {**dict(red="mean", lam=0.0, gd=False, bs=5, epochs=3, lr=0.1, momentum=0.0, wd=0.0,
                 drop_last=False, hidden=(5,), act="relu"), **case}
    lossname, n, d = kw["lossname"], 23, 4          # 23 = 4 batches of 5 and a short one of 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    y = {"CrossEntropy": rng.integers(3, size=n), "MSE": rng.normal(size=(n, 3))}.get(
        lossname, rng.choice([-1.0, 1.0], size=n))
    dims = (d,) + kw["hidden"] + ({"CrossEntropy": 3, "MSE": 3}.get(lossname, 1),)
    layers = []
    for i in range(len(dims) - 1):
        layers.append(Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(ReLU() if kw["act"] == "relu" else Tanh())
    model = nnumba.Sequential(*layers, seed=0).astype(np.float64)
    P = [torch.tensor(np.array(p.value), requires_grad=True) for _, p in model.params()]
    loss = Hinge(kw["lam"], kw["red"]) if lossname == "Hinge" else \
        {"CrossEntropy": CrossEntropy, "MSE": MSE, "Logistic": Logistic}[lossname](kw["red"])
    common = dict(lr=kw["lr"], momentum=kw["momentum"], weight_decay=kw["wd"],
                  batch_size=kw["bs"], precompile=False)
    trainer = nnumba.GDTrainer(model, loss, **common) if kw["gd"] else \
        nnumba.SGDTrainer(model, loss, shuffle=False, drop_last=kw["drop_last"], **common)
    trainer.fit(x, y, epochs=kw["epochs"])
    ref = _torch_run(P, x, y, lossname, kw["red"], kw["lam"],
                     torch.relu if kw["act"] == "relu" else torch.tanh, kw["gd"], kw["bs"],
                     kw["epochs"], kw["lr"], kw["momentum"], kw["wd"], kw["drop_last"])
    scale = max(np.max(np.abs(r)) for r in ref)
    for (name, p), r in zip(model.params(), ref):
        assert np.max(np.abs(np.asarray(p.value) - r)) <= 1e-12 * scale, name


def test_gd_train_loss_under_sum_is_the_summed_objective_as_the_readme_says():
    """GDTrainer's train_loss is the objective it descends, at the epoch's starting
    weights: a sum under "sum" (N times the per-sample mean test_loss on the same set);
    SGDTrainer's is a per-sample mean.  Reference: torch's cross-entropy at lr 0."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 3)), rng.integers(3, size=10)
    model = nnumba.Sequential(Linear(3, 3), seed=0).astype(np.float64)
    w, b = (torch.from_numpy(np.array(p.value)) for _, p in model.params())
    mean = float(F.cross_entropy(torch.from_numpy(x) @ w.T + b, torch.from_numpy(y)))
    gd = nnumba.GDTrainer(model, CrossEntropy("sum"), lr=0.0, batch_size=4, precompile=False)
    row = gd.fit(x, y, 1, x_test=x, y_test=y).epochs[-1]
    assert abs(row["train_loss"] - 10 * mean) < 1e-12 and abs(row["test_loss"] - mean) < 1e-13
    sgd = nnumba.SGDTrainer(model, CrossEntropy("sum"), lr=0.0, batch_size=4, precompile=False)
    assert abs(sgd.fit(x, y, 1).epochs[-1]["train_loss"] - mean) < 1e-13
    from pathlib import Path
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "`GDTrainer`'s `train_loss` is the objective it descends" in readme


def test_perceptron_criterion_takes_torchs_subgradient_at_the_kink_as_documented():
    """From all-zero weights the criterion's gradient is 0 (torch's relu), so SGD does
    not move, as its docstring says; train_perceptron, the lecture's rule, does."""
    x = np.array([[1.0, 2.0], [-1.0, -1.5], [2.0, 0.5], [-2.0, -0.5]])
    y = np.array([1.0, -1.0, 1.0, -1.0])
    model = nnumba.Sequential(Linear(2, 1), seed=0).astype(np.float64)
    for _, p in model.params():
        p.value[...] = 0
    nnumba.SGDTrainer(model, PerceptronCriterion("sum"), lr=1.0, batch_size=1, shuffle=False,
                      precompile=False).fit(x, y, epochs=3)
    assert not model.flat_params.any()
    yh = torch.zeros(4, requires_grad=True)
    torch.relu(-torch.from_numpy(y).float() * yh).sum().backward()
    assert not yh.grad.any()  # torch's subgradient at the kink
    assert "train_perceptron" in PerceptronCriterion.__doc__
    result = nnumba.train_perceptron(x, y.astype(int))
    assert result.w.any() and np.all(np.sign(x @ result.w + result.b) == y)
