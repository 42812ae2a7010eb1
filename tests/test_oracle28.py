"""Peer oracle 28: regression oracles for torch import, AlexNet, GDTrainer and pooling.

No finding of this round failed: every test below passed on commit 6a5263a.  They are
kept as regression tests, each against an independent reference (torch autograd,
numpy, scipy), for paths no earlier test compared this way: safetensors / sorted-name
import of a >10-layer torch Sequential with AdaptiveAvgPool2d + Dropout, torchvision's
AlexNet layout by name, GDTrainer with momentum + weight decay + a short last batch,
max-pool tie routing, and the fused Conv2d+ReLU+MaxPool2d step in train mode.
Run with NUMBA_NUM_THREADS=1 (about 20 s warm).
"""
import itertools

import numpy as np
import pytest

import nnumba
from nnumba.layers import (AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, Conv2d, Dropout,
                           Flatten, Linear, MaxPool1d, MaxPool2d, ReLU)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _pair_alexlike(tnn):
    t = tnn.Sequential(tnn.Conv2d(3, 8, 5, stride=2, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
                       tnn.Conv2d(8, 6, 3, padding=1), tnn.ReLU(), tnn.AvgPool2d(2),
                       tnn.AdaptiveAvgPool2d((3, 5)), tnn.Flatten(), tnn.Dropout(0.5),
                       tnn.Linear(90, 20), tnn.ReLU(), tnn.Dropout(), tnn.Linear(20, 4))
    n = nnumba.Sequential(Conv2d(3, 8, 5, stride=2, padding=2), ReLU(), MaxPool2d(3, 2),
                          Conv2d(8, 6, 3, padding=1), ReLU(), AvgPool2d(2),
                          AdaptiveAvgPool2d((3, 5)), Flatten(), Dropout(0.5), Linear(90, 20),
                          ReLU(), Dropout(), Linear(20, 4), seed=0)
    return t, n


@pytest.mark.parametrize("via", ["mapping", "npz", "safetensors", "sorted-mapping"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_imported_alexlike_matches_torch_forward_and_backward(tmp_path, via, dtype):
    torch = pytest.importorskip("torch")
    from nnumba.torch_import import load_torch_weights, match_state_dict
    torch.manual_seed(0)
    t, n = _pair_alexlike(torch.nn)
    t = t.to(torch.float64 if dtype == np.float64 else torch.float32).eval()
    n = n.astype(dtype)
    sd = t.state_dict()
    if via == "mapping":
        src = sd
    elif via == "npz":
        src = tmp_path / "w.npz"
        np.savez(src, **{k: v.numpy() for k, v in sd.items()})
    else:
        st = pytest.importorskip("safetensors.torch")
        src = tmp_path / "w.safetensors"
        st.save_file(sd, str(src))
        if via == "sorted-mapping":  # what safetensors' load_file returns: names sorted
            src = st.load_file(str(src))
    load_torch_weights(n, src)
    n.eval()
    n.input_grad = True
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for batch in (1, 3):
        rng = np.random.default_rng(batch)
        x = rng.standard_normal((batch, 3, 37, 41)).astype(dtype)
        xt = torch.tensor(x, requires_grad=True)
        yt = t(xt)
        g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
        yt.backward(torch.tensor(g))
        n.zero_grad()
        y = np.array(n.forward(x.copy()))
        dx = n.backward(g.copy())
        assert _rel(y, yt.detach().numpy()) < tol
        assert _rel(n.predict(x, batch_size=2), yt.detach().numpy()) < tol
        assert _rel(dx, xt.grad.numpy()) < tol
        params, tparams = dict(n.params()), dict(t.named_parameters())
        for key, name in match_state_dict(n, sd):
            assert _rel(params[name].grad, tparams[key].grad.numpy()) < tol, (key, name)
        t.zero_grad()


def test_alexnet_torchvision_layout_by_name_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    from nnumba.torch_import import load_torch_weights
    tnn = torch.nn

    class AlexNet(tnn.Module):  # torchvision's module names, without torchvision
        def __init__(self, num_classes=10):
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
                tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
                tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(),
                tnn.Conv2d(384, 256, 3, padding=1), tnn.ReLU(),
                tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2))
            self.avgpool = tnn.AdaptiveAvgPool2d((6, 6))
            self.classifier = tnn.Sequential(
                tnn.Dropout(), tnn.Linear(9216, 64), tnn.ReLU(), tnn.Dropout(),
                tnn.Linear(64, 64), tnn.ReLU(), tnn.Linear(64, num_classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    torch.manual_seed(0)
    t = AlexNet().eval()
    st.save_file(t.state_dict(), str(tmp_path / "a.safetensors"))
    spec = nnumba.build("alexnet", num_classes=10).spec()
    for layer in spec:  # a narrower classifier keeps the test small
        if layer["type"] == "Linear":
            layer["out_features"] = 64 if layer["out_features"] == 4096 else layer["out_features"]
            layer["in_features"] = 64 if layer["in_features"] == 4096 else layer["in_features"]
    n = nnumba.build(spec)
    load_torch_weights(n, tmp_path / "a.safetensors")
    n.eval()
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 224, 224), (3, 3, 100, 131), (2, 3, 63, 63)]:
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            ref = t(torch.tensor(x)).numpy()
        assert _rel(n.predict(x, batch_size=2), ref) < 1e-5


def _numpy_gd(p, grad, lr, momentum, weight_decay, steps):
    buf, losses = None, []
    for _ in range(steps):
        loss, g = grad(p)
        losses.append(loss)
        g = g + weight_decay * p
        buf = g.copy() if buf is None else momentum * buf + g
        p = p - lr * (buf if momentum else g)
    return p, losses


@pytest.mark.parametrize("lr,momentum,weight_decay,batch", [(0.1, 0, 0, 53), (0.1, 0.9, 0.01, 10),
                                                           (0.02, 0, 0.1, 1)])
def test_gdtrainer_logistic_steps_match_numpy(lr, momentum, weight_decay, batch):
    from scipy.special import expit, log_expit
    from nnumba.losses import Logistic
    rng = np.random.default_rng(0)
    x = rng.standard_normal((53, 3))
    y = np.where(rng.random(53) < 0.5, 1.0, -1.0)
    x += 0.7 * y[:, None]

    def grad(p):
        z = y * (x @ p[:3] + p[3])
        dz = -expit(-z) * y / len(x)
        return float(-log_expit(z).mean()), np.concatenate([x.T @ dz, [dz.sum()]])

    model = nnumba.Sequential(Linear(3, 1), seed=0).astype(np.float64)
    p0 = model.flat_params.copy()
    trainer = nnumba.GDTrainer(model, Logistic(), lr=lr, momentum=momentum,
                               weight_decay=weight_decay, batch_size=batch)
    history = trainer.fit(x, y, epochs=25)
    ref, losses = _numpy_gd(p0, grad, lr, momentum, weight_decay, 25)
    assert _rel(model.flat_params, ref) < 1e-12
    assert _rel([r["train_loss"] for r in history.epochs], losses) < 1e-12


def test_gdtrainer_l2_logistic_converges_to_scipy_minimum():
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit
    from nnumba.losses import Logistic
    rng = np.random.default_rng(0)
    x = rng.standard_normal((53, 3))
    y = np.where(rng.random(53) < 0.5, 1.0, -1.0)
    x += 0.7 * y[:, None]
    wd = 0.05

    def objective(p):  # mean logistic loss + wd/2 |p|^2 (torch's weight decay: every param)
        z = y * (x @ p[:3] + p[3])
        dz = -expit(-z) * y / len(x)
        return (float(-log_expit(z).mean() + wd / 2 * p @ p),
                np.concatenate([x.T @ dz, [dz.sum()]]) + wd * p)

    best = minimize(objective, np.zeros(4), jac=True, method="BFGS", options={"gtol": 1e-12}).x
    model = nnumba.Sequential(Linear(3, 1), seed=0).astype(np.float64)
    nnumba.GDTrainer(model, Logistic(), lr=0.5, momentum=0.9, weight_decay=wd,
                     batch_size=20).fit(x, y, epochs=1500)
    assert np.abs(model.flat_params - best).max() < 1e-9


POOLS2D = [(2, None), (3, 2), (2, 3), (3, 1), ((2, 3), (1, 2)), ((3, 1), None), (4, 5)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_forward_backward_with_ties_match_torch(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    tol = 1e-5 if dtype == np.float32 else 1e-12

    def check(layer, fn, shape, ties):
        x = rng.standard_normal(shape).astype(dtype)
        if ties:  # many equal maxima: torch routes the gradient to the first
            x = np.round(x).astype(dtype)
        m = nnumba.Sequential(layer).astype(dtype)
        m.input_grad = True
        xt = torch.tensor(x, requires_grad=True)
        yt = fn(xt)
        g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
        yt.backward(torch.tensor(g))
        y = np.array(m.forward(x.copy()))
        assert y.shape == tuple(yt.shape)
        assert np.abs(y - yt.detach().numpy()).max() <= tol
        assert np.abs(m.backward(g.copy()) - xt.grad.numpy()).max() <= tol

    for (k, s), (h, w), ties in itertools.product(POOLS2D, [(7, 9), (8, 8), (5, 11)], [0, 1]):
        check(MaxPool2d(k, s), lambda t: F.max_pool2d(t, k, s), (2, 3, h, w), ties)
        check(AvgPool2d(k, s), lambda t: F.avg_pool2d(t, k, s), (2, 3, h, w), ties)
    for (k, s), length, ties in itertools.product([(2, None), (3, 2), (2, 3), (3, 1)], [7, 10],
                                                   [0, 1]):
        check(MaxPool1d(k, s), lambda t: F.max_pool1d(t, k, s), (2, 3, length), ties)
        check(AvgPool1d(k, s), lambda t: F.avg_pool1d(t, k, s), (2, 3, length), ties)
    for o, (h, w) in itertools.product([1, (3, 2), (5, 7), (13, 3)], [(7, 5), (13, 10), (3, 2)]):
        check(AdaptiveAvgPool2d(o), lambda t: F.adaptive_avg_pool2d(t, o), (2, 3, h, w), 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_conv_relu_maxpool_train_mode_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    from nnumba.torch_import import load_torch_weights, match_state_dict
    tnn = torch.nn
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    tol = 1e-5 if dtype == np.float32 else 1e-12
    rng = np.random.default_rng(0)
    for (ck, cs, cp), (pk, ps), zero in itertools.product(
            [(3, 1, 0), (3, 2, 1), ((3, 5), (1, 2), (1, 2))],
            [(2, None), (3, None), ((3, 2), (2, 2))], [False, True]):
        torch.manual_seed(0)
        t = tnn.Sequential(tnn.Conv2d(3, 8, ck, cs, cp), tnn.ReLU(), tnn.MaxPool2d(pk, ps)).to(tdt)
        if zero:  # equal positive maxima everywhere: the argmax decides the weight gradient
            with torch.no_grad():
                t[0].weight.zero_()
                t[0].bias.fill_(0.3)
        n = nnumba.Sequential(Conv2d(3, 8, ck, cs, cp), ReLU(), MaxPool2d(pk, ps),
                              seed=0).astype(dtype)
        load_torch_weights(n, t.state_dict())
        n.train()
        n.input_grad = True
        assert type(n.steps[0]).__name__ == "Conv2dReLUMaxPool2d"
        x = rng.standard_normal((3, 3, 20, 21)).astype(dtype)
        xt = torch.tensor(x, requires_grad=True)
        yt = t(xt)
        g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
        yt.backward(torch.tensor(g))
        n.zero_grad()
        assert _rel(n.forward(x.copy()), yt.detach().numpy()) < tol
        assert np.abs(n.backward(g.copy()) - xt.grad.numpy()).max() <= tol * max(
            1.0, np.abs(xt.grad.numpy()).max())
        params, tparams = dict(n.params()), dict(t.named_parameters())
        for key, name in match_state_dict(n, t.state_dict()):
            assert _rel(params[name].grad, tparams[key].grad.numpy()) < tol, (key, zero)
