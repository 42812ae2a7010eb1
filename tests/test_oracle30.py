"""Oracle 30: whole training runs against independent references (torch.optim.SGD,
numpy closed-form gradients, sklearn's LogisticRegression / Perceptron, a plain-Python
perceptron, a numpy forward pass from a saved file). One finding: `nnumba train --data
FILE.csv --seed 1` drew its held-out split with --seed, and a run going on from its
saved weights (no --seed) drew another, training on the first run's test samples."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nnumba
from nnumba.losses import CrossEntropy, Hinge, Logistic, MSE, PerceptronCriterion
from nnumba.train.perceptron import train_perceptron

D, C, N = 6, 3, 37


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def _torch_model(torch, spec):
    nn = torch.nn
    make = {"Conv2d": nn.Conv2d, "MaxPool2d": nn.MaxPool2d, "Linear": nn.Linear,
            "ReLU": nn.ReLU, "Tanh": nn.Tanh, "Flatten": nn.Flatten}
    return nn.Sequential(*[make[d["type"]](**{k: v for k, v in d.items() if k != "type"})
                           for d in spec]).double()


def _copy(model, tm, torch):
    with torch.no_grad():
        for (_, p), t in zip(model.params(), tm.parameters()):
            t.copy_(torch.from_numpy(np.array(p.value, np.float64)))


def _torch_loss(torch, name, out, y, reduction, lam, tm):
    F = torch.nn.functional
    red = torch.mean if reduction == "mean" else torch.sum
    if name == "CrossEntropy":
        value = F.cross_entropy(out, y, reduction=reduction)
    elif name == "MSE":
        value = F.mse_loss(out, y, reduction=reduction)
    else:
        z, s = out.reshape(-1), y.reshape(-1)
        value = red({"Logistic": F.softplus(-s * z), "Hinge": torch.clamp(1 - s * z, min=0),
                     "Perceptron": torch.clamp(-s * z, min=0)}[name])
    if lam:
        value = value + lam * sum((p ** 2).sum() for n, p in tm.named_parameters()
                                  if n.endswith("weight"))
    return value


def _torch_run(torch, tm, x, y, name, *, lr, momentum, wd, bs, epochs, shuffle, seed,
               drop_last=False, reduction="mean", lam=0.0, gd=False):
    """torch.optim.SGD over nnumba's batch order (default_rng(seed).permutation per epoch);
    returns the per-epoch losses nnumba reports."""
    opt = torch.optim.SGD(tm.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    rng, n = np.random.default_rng(seed), len(x)
    X, Y = torch.from_numpy(np.asarray(x, np.float64)), torch.from_numpy(y)
    losses = []
    for _ in range(epochs):
        if gd:
            opt.zero_grad()
            value = _torch_loss(torch, name, tm(X), Y, reduction, lam, tm)
            value.backward()
            opt.step()
            losses.append(float(value))
            continue
        order = rng.permutation(n) if shuffle else np.arange(n)
        stop = n - n % bs if drop_last else n
        total = seen = 0
        for s in range(0, stop, bs):
            idx = order[s:s + bs]
            opt.zero_grad()
            value = _torch_loss(torch, name, tm(X[idx]), Y[idx], reduction, lam, tm)
            value.backward()
            opt.step()
            total += float(value) * (len(idx) if reduction == "mean" else 1)
            seen += len(idx)
        losses.append(total / seen)
    return losses


def _rel(model, tm):
    num = max(np.abs(np.array(p.value, np.float64) - t.detach().numpy()).max()
              for (_, p), t in zip(model.params(), tm.parameters()))
    return num / max(np.abs(t.detach().numpy()).max() for t in tm.parameters())


def _mlp(act, out):
    return [{"type": "Linear", "in_features": D, "out_features": 8}, {"type": act},
            {"type": "Linear", "in_features": 8, "out_features": 5}, {"type": act},
            {"type": "Linear", "in_features": 5, "out_features": out}]


def _data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, D))
    return (x, rng.integers(0, C, N), rng.normal(size=(N, C)),
            np.where(rng.random(N) < .5, -1.0, 1.0))


LOSSES = [("CrossEntropy", lambda: CrossEntropy(), "classes", C),
          ("MSE", lambda: MSE(reduction="sum"), "values", C),
          ("Logistic", lambda: Logistic(), "signs", 1),
          ("Hinge", lambda: Hinge(lam=0.01), "signs", 1),
          ("Perceptron", lambda: PerceptronCriterion(), "signs", 1)]
SETTINGS = [(0.05, 0.0, 0.0, 5, False, False, 10), (0.05, 0.9, 0.01, 5, True, False, 10),
            (0.02, 0.5, 0.001, 8, True, True, 10), (0.05, 0.9, 0.0, 100, False, False, 100)]


@pytest.mark.parametrize("act", ["Tanh", "ReLU"])
@pytest.mark.parametrize("loss", LOSSES, ids=[l[0] for l in LOSSES])
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("gd", [False, True], ids=["sgd", "gd"])
def test_float64_training_run_matches_torch_sgd(act, loss, setting, gd):
    """Weights after every epoch (1 to 100 steps) and the per-epoch losses, to 1e-12."""
    torch = _torch()
    name, make, kind, out = loss
    lr, mom, wd, bs, shuffle, drop_last, epochs = setting
    if gd and drop_last:
        pytest.skip("GD has no drop_last")
    x, yc, yr, ys = _data()
    y = {"classes": yc, "values": yr, "signs": ys}[kind]
    lo = make()
    if lo.reduction == "sum":
        lr /= 10
    spec = _mlp(act, out)
    model = nnumba.Sequential.from_spec(spec, seed=0).astype(np.float64)
    tm = _torch_model(torch, spec)
    _copy(model, tm, torch)
    kw = {} if gd else {"shuffle": shuffle, "drop_last": drop_last}
    trainer = (nnumba.GDTrainer if gd else nnumba.SGDTrainer)(
        model, lo, lr=lr, momentum=mom, weight_decay=wd, batch_size=bs, seed=3,
        precompile=False, **kw)
    got = [r["train_loss"] for r in trainer.fit(x, y, epochs=epochs).epochs]
    want = _torch_run(torch, tm, x, y, name, lr=lr, momentum=mom, wd=wd, bs=bs, epochs=epochs,
                      shuffle=shuffle and not gd, seed=3, drop_last=drop_last,
                      reduction=lo.reduction, lam=getattr(lo, "lam", 0.0), gd=gd)
    assert _rel(model, tm) < 1e-12
    np.testing.assert_allclose(got, want, rtol=1e-11)


def test_lenet_float64_sgd_matches_torch():
    torch = _torch()
    from nnumba.models.lenet import lenet
    rng = np.random.default_rng(2)
    x, y = rng.random((13, 1, 28, 28)), rng.integers(0, 10, 13)
    model = nnumba.Sequential.from_spec(lenet(), seed=0).astype(np.float64)
    tm = _torch_model(torch, lenet())
    _copy(model, tm, torch)
    got = nnumba.SGDTrainer(model, CrossEntropy(), lr=0.05, momentum=0.9, weight_decay=1e-3,
                            batch_size=4, seed=5, precompile=False).fit(x, y, epochs=5)
    want = _torch_run(torch, tm, x, y, "CrossEntropy", lr=0.05, momentum=0.9, wd=1e-3, bs=4,
                      epochs=5, shuffle=True, seed=5)
    assert _rel(model, tm) < 1e-12
    np.testing.assert_allclose([r["train_loss"] for r in got.epochs], want, rtol=1e-11)


def test_logistic_regression_gd_matches_numpy_and_sklearn_optimum():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(-1, 1, (50, 2)), rng.normal(1, 1, (50, 2))])
    y = np.repeat([-1.0, 1.0], 50)
    model = nnumba.Sequential.from_spec([{"type": "Linear", "in_features": 2, "out_features": 1}],
                                        seed=0).astype(np.float64)
    w, b = np.array(model.params()[0][1].value).ravel().copy(), float(model.params()[1][1].value[0])
    trainer = nnumba.GDTrainer(model, Logistic(), lr=0.1, batch_size=30, precompile=False)
    hist = trainer.fit(x, y, epochs=200)
    for row in hist.epochs:  # the closed-form gradient of mean log(1 + exp(-y (w.x + b)))
        z = x @ w + b
        assert abs(row["train_loss"] - np.mean(np.logaddexp(0, -y * z))) < 1e-14
        s = -y / (1 + np.exp(y * z))
        w, b = w - 0.1 * x.T @ s / len(x), b - 0.1 * s.mean()
    np.testing.assert_allclose(np.array(model.params()[0][1].value).ravel(), w, atol=1e-14)
    sklearn = pytest.importorskip("sklearn.linear_model")
    trainer.lr = 2.0
    trainer.fit(x, y, epochs=5000)
    sk = sklearn.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(x, y)
    np.testing.assert_allclose(np.array(model.params()[0][1].value).ravel(), sk.coef_.ravel(),
                               atol=1e-8)
    assert abs(float(model.params()[1][1].value[0]) - sk.intercept_[0]) < 1e-8


def _plain_perceptron(x, y, max_epochs, bias, x_test=None, y_test=None):
    """The lecture's algorithm in plain Python floats (every product rounded, summed in
    order, the bias feature last, as scikit-learn's dot + intercept)."""
    rows = np.asarray(x, np.float64).reshape(len(x), -1).tolist()
    test = None if x_test is None else np.asarray(x_test, np.float64).reshape(len(x_test), -1).tolist()
    d, one = len(rows[0]), 1.0 if bias else 0.0
    w = [0.0] * (d + 1)

    def score(r):
        s = 0.0
        for j in range(d):
            s += r[j] * w[j]
        return s + one * w[d]

    def errors(rs, ys):
        return sum((1 if score(r) >= 0 else -1) != t for r, t in zip(rs, ys)) / len(rs)
    history, updates = [], 0
    for epoch in range(max_epochs):
        changes = 0
        for r, t in zip(rows, y):
            if t * score(r) <= 0:
                for j in range(d):
                    w[j] += t * r[j]
                w[d] += t * one
                changes += 1
        updates += changes
        history.append({"epoch": epoch, "nb_changes": changes, "train_error": errors(rows, y),
                        "test_error": None if test is None else errors(test, y_test)})
        if not changes:
            break
    return np.array(w[:d]), w[d], updates, history


@pytest.mark.parametrize("kind", ["int", "tenths", "tenths32", "normal32", "normal"])
@pytest.mark.parametrize("bias", [True, False])
def test_perceptron_matches_plain_python_and_sklearn_with_ties(kind, bias):
    rng = np.random.default_rng(["int", "tenths", "tenths32", "normal32", "normal"].index(kind))
    for trial in range(30):
        n, d = int(rng.integers(2, 40)), int(rng.integers(1, 60))
        x = {"int": lambda: rng.integers(-3, 4, (n, d)).astype(np.float64),
             "tenths": lambda: rng.integers(-10, 11, (n, d)) * 0.1,
             "tenths32": lambda: (rng.integers(-10, 11, (n, d)) * 0.1).astype(np.float32),
             "normal32": lambda: rng.normal(size=(n, d)).astype(np.float32),
             "normal": lambda: rng.normal(size=(n, d))}[kind]()
        y = np.where(x @ rng.normal(size=d) + 0.3 * (trial % 2) >= 0, 1, -1) if trial % 3 \
            else np.where(rng.random(n) < .5, -1, 1)
        xt, yt = x[:5], -y[:5]
        epochs = int(rng.integers(1, 30))
        got = train_perceptron(x, y, epochs, bias=bias, x_test=xt, y_test=yt)
        w, b, updates, history = _plain_perceptron(x, y, epochs, bias, xt, yt)
        assert np.array_equal(got.w, w) and got.b == b and got.updates == updates
        assert list(got.history) == history and got.epochs == len(history)
        assert got.converged == (history[-1]["nb_changes"] == 0)
        skl = pytest.importorskip("sklearn.linear_model")
        if len(np.unique(y)) == 2:
            sk = skl.Perceptron(eta0=1, shuffle=False, tol=None, alpha=0, max_iter=got.epochs,
                                fit_intercept=bias).fit(np.asarray(x, np.float64), y)
            assert np.array_equal(sk.coef_.ravel(), got.w)
            assert (not bias) or sk.intercept_[0] == got.b


def test_nnclassifier_is_the_hand_run_and_torch():
    torch = _torch()
    from nnumba.sklearn import NNClassifier
    from scipy.special import softmax
    rng = np.random.default_rng(7)
    x = rng.normal(size=(53, 5))
    labels = np.array(["b", "a", "c"])[rng.integers(0, 3, 53)]
    spec = [{"type": "Linear", "in_features": 5, "out_features": 7}, {"type": "Tanh"},
            {"type": "Linear", "in_features": 7, "out_features": 3}]
    est = NNClassifier(spec, epochs=7, lr=0.05, momentum=0.9, weight_decay=0.01, batch_size=8,
                       dtype="float64", random_state=3).fit(x, labels)
    rs = np.random.RandomState(3)
    model = nnumba.Sequential.from_spec(spec, seed=int(rs.randint(2**31 - 1))).astype(np.float64)
    tm = _torch_model(torch, spec)
    _copy(model, tm, torch)
    classes = np.unique(labels)
    _torch_run(torch, tm, x, np.searchsorted(classes, labels), "CrossEntropy", lr=0.05,
               momentum=0.9, wd=0.01, bs=8, epochs=7, shuffle=True, seed=int(rs.randint(2**31 - 1)))
    assert _rel(est.model_, tm) < 1e-12
    with torch.no_grad():
        logits = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(est.predict_proba(x), softmax(logits, axis=1), atol=1e-13)
    assert np.array_equal(est.predict(x), classes[logits.argmax(1)])
    assert est.score(x, labels) == np.mean(classes[logits.argmax(1)] == labels)


CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "oracle30.csv")


def _cli(tmp_path, *args, stderr=False):
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "nnumba", "train", "--data", CSV, "--json",
                        *args], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    return (json.loads(p.stdout), p.stderr) if stderr else json.loads(p.stdout)


@pytest.mark.parametrize("extra", [["--batch-size", "8"], ["--trainer", "gd"],
                                   ["--loss", "MSE", "--lr", "0.01"]])
def test_cli_test_metrics_match_numpy_on_the_saved_weights(tmp_path, extra):
    from nnumba.data import load_arrays
    out = _cli(tmp_path, *extra, "--seed", "0", "--epochs", "4", "--save", "w.npz")
    data = load_arrays(CSV, seed=0)
    z = np.load(tmp_path / "w.npz", allow_pickle=False)
    h = data.x_test.astype(np.float64)
    for i, layer in enumerate(json.loads(str(z["__nnumba_spec__"]))["spec"]):
        if layer["type"] == "Linear":
            h = h @ z[f"{i}.weight"].astype(np.float64).T + z[f"{i}.bias"]
        elif layer["type"] == "ReLU":
            h = np.maximum(h, 0)
    y = data.y_test
    if "MSE" in extra:
        want = np.mean((h - np.eye(h.shape[1])[y]) ** 2)
    else:
        m = h.max(1)
        want = np.mean(m + np.log(np.exp(h - m[:, None]).sum(1)) - h[np.arange(len(y)), y])
    assert abs(out["test_loss"] - want) < 1e-6 * want
    assert out["test_accuracy"] == np.mean(h.argmax(1) == y)


def test_cli_resumed_run_is_the_one_long_run(tmp_path):
    """4 epochs, save, --model saved 6 more == 10 epochs in one go, bitwise."""
    # (no --seed on the resumed run: --seed restarts the batch order, as documented)
    _cli(tmp_path, "--batch-size", "6", "--drop-last", "--weight-decay", "0.01",
         "--epochs", "4", "--save", "a.npz")
    b = _cli(tmp_path, "--model", "a.npz", "--epochs", "6", "--save", "b.npz")
    c = _cli(tmp_path, "--batch-size", "6", "--drop-last", "--weight-decay", "0.01",
             "--epochs", "10", "--save", "c.npz")
    zb, zc = np.load(tmp_path / "b.npz"), np.load(tmp_path / "c.npz")
    for k in zc.files:
        if k != "__nnumba_spec__":
            assert np.array_equal(zb[k], zc[k]), k
    keys = ("epoch", "train_loss", "test_loss", "test_accuracy")
    assert [[r[k] for k in keys] for r in b["history"]] == \
        [[r[k] for k in keys] for r in c["history"][4:]]


def test_cli_a_seeded_run_goes_on_from_its_saved_weights_on_the_same_split(tmp_path):
    """A run with --seed 1, saved, then trained on with `--model saved.npz` (no --seed, so
    that the batch order goes on, as the README says) held out another split before:
    it trained on the first run's test samples while saying 'to go on as one run'. The
    split is the file's now, whatever --seed. Reference: the same 10 epochs in one run."""
    _cli(tmp_path, "--seed", "1", "--batch-size", "8", "--epochs", "4", "--save", "a.npz")
    b, resumed = _cli(tmp_path, "--model", "a.npz", "--epochs", "6", "--save", "b.npz",
                      stderr=True)
    c = _cli(tmp_path, "--seed", "1", "--batch-size", "8", "--epochs", "10", "--save", "c.npz")
    assert "to go on as one run" in resumed
    keys = ("epoch", "train_loss", "test_loss", "test_accuracy")
    assert [[r[k] for k in keys] for r in b["history"]] == \
        [[r[k] for k in keys] for r in c["history"][4:]]
    zb, zc = np.load(tmp_path / "b.npz"), np.load(tmp_path / "c.npz")
    for k in zc.files:
        if k != "__nnumba_spec__":
            assert np.array_equal(zb[k], zc[k]), k
