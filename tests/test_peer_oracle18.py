"""Peer oracle 18: whole training runs against torch and scikit-learn (these passed when
written: they guard the trajectories, the batch order and warm_start from now on).
Independent references: torch 2.13 (float64) with the same initial weights and the
trainer's documented batch order (np.random.default_rng(seed).permutation(n) per epoch),
and scikit-learn's MLPRegressor/MLPClassifier with the documented lr mapping."""
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
import torch.nn as tn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import nnumba  # noqa: E402
from nnumba import GDTrainer, SGDTrainer  # noqa: E402
from nnumba.losses import CrossEntropy  # noqa: E402

CONV1D = [{"type": "Conv1d", "in_channels": 2, "out_channels": 5, "kernel_size": 4, "stride": 2,
           "padding": 3}, {"type": "ReLUMaxPool1d", "kernel_size": 3, "stride": 2},
          {"type": "AvgPool1d", "kernel_size": 2}, {"type": "Flatten"},
          {"type": "Linear", "in_features": 25, "out_features": 3}, {"type": "LeakyReLU"},
          {"type": "Linear", "in_features": 3, "out_features": 3}]
CONV2D = [{"type": "Conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3, "stride": 1,
           "padding": 1}, {"type": "Tanh"}, {"type": "AvgPool2d", "kernel_size": 2},
          {"type": "Conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "stride": 2,
           "padding": 1}, {"type": "ReLUMaxPool2d", "kernel_size": 2},
          {"type": "AdaptiveAvgPool2d", "output_size": 3}, {"type": "Flatten"},
          {"type": "Linear", "in_features": 54, "out_features": 9}, {"type": "Sigmoid"},
          {"type": "Dropout", "p": 0.0}, {"type": "Linear", "in_features": 9, "out_features": 3}]


def _torch_of(model):
    mods = []
    for d in model.spec():
        t, o = d["type"], d
        if t in ("Linear",):
            mods.append(tn.Linear(o["in_features"], o["out_features"], bias=o.get("bias", True)))
        elif t in ("Conv1d", "Conv2d"):
            cls = tn.Conv1d if t == "Conv1d" else tn.Conv2d
            mods.append(cls(o["in_channels"], o["out_channels"], o["kernel_size"],
                            stride=o.get("stride", 1), padding=o.get("padding", 0),
                            bias=o.get("bias", True)))
        elif t == "ReLUMaxPool1d":
            mods.append(tn.Sequential(tn.ReLU(), tn.MaxPool1d(o["kernel_size"], o.get("stride"))))
        elif t == "ReLUMaxPool2d":
            mods.append(tn.Sequential(tn.ReLU(), tn.MaxPool2d(o["kernel_size"], o.get("stride"))))
        elif t == "AvgPool1d":
            mods.append(tn.AvgPool1d(o["kernel_size"], o.get("stride")))
        elif t == "AvgPool2d":
            mods.append(tn.AvgPool2d(o["kernel_size"], o.get("stride")))
        elif t == "AdaptiveAvgPool2d":
            mods.append(tn.AdaptiveAvgPool2d(o["output_size"]))
        elif t == "Dropout":
            mods.append(tn.Dropout(o["p"]))
        else:
            mods.append({"ReLU": tn.ReLU, "Tanh": tn.Tanh, "Sigmoid": tn.Sigmoid,
                         "Flatten": tn.Flatten, "LeakyReLU": tn.LeakyReLU}[t]())
    net = tn.Sequential(*mods).double()
    ps = dict(net.named_parameters())
    with torch.no_grad():
        for name, p in model.params():
            ps[name].copy_(torch.from_numpy(np.array(p.value, np.float64)))
    return net


@pytest.mark.parametrize("spec,shape", [(CONV1D, (2, 40)), (CONV2D, (2, 20, 20))])
@pytest.mark.parametrize("kind", ["sgd", "gd"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_three_epochs_momentum_decay_match_torch(spec, shape, kind, reduction):
    n, bs, lr, mom, wd, seed = 23, 6, 0.05, 0.9, 1e-3, 5
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((n,) + shape), rng.integers(0, 3, n)
    model = nnumba.build(spec, seed=0).astype(np.float64)
    net = _torch_of(model)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=mom, weight_decay=wd)
    cls = SGDTrainer if kind == "sgd" else GDTrainer
    trainer = cls(model, CrossEntropy(reduction=reduction), lr=lr, momentum=mom,
                  weight_decay=wd, batch_size=bs, seed=seed)
    order_rng = np.random.default_rng(seed)
    for _ in range(3):
        trainer.fit(x, y, epochs=1)
        batches = [np.arange(n)] if kind == "gd" else \
            np.array_split(order_rng.permutation(n), range(bs, n, bs))
        for idx in batches:
            opt.zero_grad()
            F.cross_entropy(net(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]),
                            reduction=reduction).backward()
            opt.step()
        ps = dict(net.named_parameters())
        for name, p in model.params():
            ref = ps[name].detach().numpy()
            assert np.abs(np.array(p.value) - ref).max() <= 1e-11 * np.abs(ref).max(), name


@pytest.mark.parametrize("trainer", ["sgd", "gd"])
def test_partial_fit_epochs_equal_one_fit_even_through_pickle(trainer):
    from nnumba.sklearn import NNClassifier
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((53, 6)), np.array(list("abc"))[rng.integers(0, 3, 53)]
    kw = dict(model_options={"hidden": [8]}, lr=0.05, momentum=0.9, weight_decay=1e-3,
              batch_size=10, dtype="float64", random_state=3, trainer=trainer)
    whole = NNClassifier(epochs=4, **kw).fit(X, y)
    parts = NNClassifier(epochs=1, **kw)
    parts.partial_fit(X, y, classes=["a", "b", "c"])
    parts.partial_fit(X, y)
    parts = pickle.loads(pickle.dumps(parts))
    parts.partial_fit(X, y)
    parts.partial_fit(X, y)
    assert parts.n_iter_ == whole.n_iter_ == 4
    np.testing.assert_array_equal(parts.model_.flat_params, whole.model_.flat_params)


@pytest.mark.parametrize("targets", [1, 3])
def test_gd_warm_start_matches_sklearn_mlp_regressor(targets):
    """NNRegressor's docstring: steps match MLPRegressor's at learning_rate_init =
    2 lr / n_outputs_; both warm_start fits restart the momentum."""
    from sklearn.neural_network import MLPRegressor
    from nnumba.sklearn import NNRegressor
    rng = np.random.default_rng(0)
    n, d, lr, mom = 40, 5, 0.01, 0.9
    X = rng.standard_normal((n, d))
    Y = np.c_[X @ rng.standard_normal(d), np.sin(X[:, 0]), X[:, 1] ** 2][:, :targets]
    y = Y if targets > 1 else Y[:, 0]
    est = NNRegressor("mlp", model_options={"hidden": [7]}, trainer="gd", lr=lr, momentum=mom,
                      batch_size=n, dtype="float64", random_state=1, warm_start=True, epochs=1)
    skl = MLPRegressor(hidden_layer_sizes=(7,), solver="sgd", batch_size=n,
                       learning_rate_init=2 * lr / targets, momentum=mom,
                       nesterovs_momentum=False, alpha=0.0, shuffle=False, tol=0.0,
                       n_iter_no_change=10**6, warm_start=True, max_iter=1, random_state=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
        skl.fit(X, y)
        p = dict(est.model_.params())
        skl.coefs_ = [p["1.weight"].value.T.copy(), p["3.weight"].value.T.copy()]
        skl.intercepts_ = [p["1.bias"].value.copy(), p["3.bias"].value.copy()]
        est.set_params(epochs=6).fit(X, y)
        skl.set_params(max_iter=6).fit(X, y)
    p = dict(est.model_.params())
    ours = [p["1.weight"].value.T, p["3.weight"].value.T, p["1.bias"].value, p["3.bias"].value]
    for a, b in zip(ours, skl.coefs_ + skl.intercepts_):
        assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()
