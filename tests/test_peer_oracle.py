"""nnumba against an independent peer (PyTorch, scikit-learn) on unusual but valid
configurations the kernel tests do not reach through the layers: both convolution
strategies with odd channel counts, both max-pool kernels with ties, the fused
ReLU + max-pool on all-negative windows, strided and broadcast inputs, extreme
logits, whole training epochs, weight round trips and the estimators' outputs."""
import numpy as np
import pytest

import nnumba
from nnumba.kernels.cpu.conv import uses_direct
from nnumba.kernels.geometry import pair
from nnumba.layers import (AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, Conv1d, Conv2d, Dropout,
                           Flatten, Linear, MaxPool1d, MaxPool2d, ReLU, ReLUMaxPool1d,
                           ReLUMaxPool2d, Sigmoid, Tanh)
from nnumba.losses import MSE, CrossEntropy, Hinge, Logistic, PerceptronCriterion
from nnumba.torch_import import load_torch_weights
from nnumba.train import GDTrainer, SGDTrainer

torch = pytest.importorskip("torch")
from torch_oracle import check_layer, copy_params, loss_pair, tdtype, tol  # noqa: E402
F = torch.nn.functional

DTYPES = [np.float32, np.float64]


# (N, C, H, W, D, kernel, stride, padding): odd D (the direct kernels pad D to a
# multiple of 4), stride > kernel, asymmetric, padding >= kernel // 2, 1x1, kernel =
# input, width 300 (direct), many channels on small maps (GEMM, batch-inner and per image)
CONV2D = [
    (2, 3, 7, 7, 5, 3, 4, 0), (1, 1, 5, 5, 3, (2, 3), (1, 2), (1, 0)),
    (2, 2, 6, 6, 7, 1, 1, 0), (2, 3, 5, 5, 3, 5, 1, 0), (1, 2, 5, 6, 3, 3, 1, 2),
    (2, 1, 4, 300, 3, 3, 1, 1), (2, 1, 4, 300, 5, (1, 5), (1, 3), (0, 2)),
    (2, 64, 6, 6, 5, 3, 1, 1), (1, 32, 4, 4, 3, 3, 2, 1), (3, 16, 5, 7, 7, (3, 2), (2, 1), (1, 1)),
    (1, 5, 9, 9, 1, 4, 3, 2), (2, 40, 3, 3, 6, 3, 1, 0), (2, 50, 12, 12, 4, 3, 1, 1),
]


def _conv_case_path(N, C, H, W, D, k, s, p):
    conv = Conv2d(C, D, k, s, p)
    out = conv.output_shape((C, H, W))[1:]
    return uses_direct(C, conv.kernel, out, conv.stride)


def test_the_conv_cases_run_both_strategies():
    paths = {_conv_case_path(*case) for case in CONV2D}
    assert paths == {True, False}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV2D, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(case, dtype, bias):
    N, C, H, W, D, k, s, p = case
    x = np.random.default_rng(1).normal(size=(N, C, H, W)).astype(dtype)
    check_layer(Conv2d(C, D, k, s, p, bias=bias), torch.nn.Conv2d(C, D, k, s, p, bias=bias),
                x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(2, 3, 300, 5, 3, 1, 1), (1, 1, 9, 3, 4, 5, 2),
                                  (2, 64, 6, 7, 3, 1, 2), (1, 2, 5, 3, 5, 1, 0),
                                  (2, 3, 11, 1, 1, 2, 0)], ids=str)
def test_conv1d_matches_torch(case, dtype):
    N, C, L, D, k, s, p = case
    x = np.random.default_rng(2).normal(size=(N, C, L)).astype(dtype)
    check_layer(Conv1d(C, D, k, s, p), torch.nn.Conv1d(C, D, k, s, p), x, dtype)


# (N, C, H, W, kernel, stride): the two-pass row kernel takes (2|3)-wide windows that
# tile the rows (width 300, 8x8 / 2, 9x9 / 3); the others run the generic kernel
POOL2D = [(2, 3, 8, 300, 2, None), (2, 2, 9, 9, 3, None), (1, 2, 9, 12, 3, (2, 3)),
          (2, 3, 8, 8, (1, 2), (3, 2)), (2, 3, 7, 7, 2, None), (1, 1, 5, 9, 3, 1),
          (2, 2, 6, 300, (2, 3), (1, 4)), (1, 5, 7, 7, (3, 2), (2, 3)),
          (2, 3, 6, 6, 6, None), (2, 1, 5, 5, 1, 2), (1, 2, 9, 9, 2, 3)]


def _row_kernel(H, W, k, s):
    """Whether nnumba.kernels.cpu.pool._maxpool_fwd runs the two-pass row kernel."""
    (kh, kw), (sh, sw) = pair(k), pair(k if s is None else s)
    return sw == kw and kw in (2, 3) and W % kw == 0 and (kh == 3 or (H - kh) // sh * sh + sh == H)


def test_the_pool_cases_run_both_max_pool_kernels():
    assert {_row_kernel(H, W, k, s) for _, _, H, W, k, s in POOL2D} == {True, False}


def _ties(shape, dtype, seed):
    # halves in [-3, 3]: many equal values in every window
    return (np.round(np.random.default_rng(seed).normal(size=shape) * 2) / 2).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL2D, ids=str)
def test_pool2d_matches_torch_with_ties(case, dtype):
    N, C, H, W, k, s = case
    x = _ties((N, C, H, W), dtype, 3)
    check_layer(MaxPool2d(k, s), torch.nn.MaxPool2d(k, s), x, dtype)
    check_layer(AvgPool2d(k, s), torch.nn.AvgPool2d(k, s), x, dtype)
    # the chosen pixel is torch's (the first maximum), not only the maximum's value
    layer = MaxPool2d(k, s).astype(dtype)
    layer.forward(x)
    _, index = F.max_pool2d(torch.from_numpy(x), k, s, return_indices=True)
    np.testing.assert_array_equal(layer._argmax, index.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(2, 3, 300, 2, None), (1, 1, 9, 3, 1), (2, 2, 10, 4, 3),
                                  (1, 3, 7, 7, None)], ids=str)
def test_pool1d_matches_torch(case, dtype):
    N, C, L, k, s = case
    x = _ties((N, C, L), dtype, 4)
    check_layer(MaxPool1d(k, s), torch.nn.MaxPool1d(k, s), x, dtype)
    check_layer(AvgPool1d(k, s), torch.nn.AvgPool1d(k, s), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL2D[:6] + [(2, 3, 1, 300, (1, 2), None)], ids=str)
@pytest.mark.parametrize("values", ["mixed", "negative", "zeros"])
def test_fused_relu_maxpool_matches_unfused_torch(case, dtype, values):
    N, C, H, W, k, s = case
    x = _ties((N, C, H, W), dtype, 5)
    x = {"mixed": x, "negative": -np.abs(x) - 0.5, "zeros": np.zeros_like(x)}[values]
    spatial = 1 if H == 1 else 2
    if spatial == 1:
        x, k, s = x[:, :, 0], k[1], s
    model = nnumba.Sequential(ReLU(), (MaxPool1d if spatial == 1 else MaxPool2d)(k, s))
    model.astype(dtype).input_grad = True
    assert type(model.steps[0]) is (ReLUMaxPool1d if spatial == 1 else ReLUMaxPool2d)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    pool = F.max_pool1d if spatial == 1 else F.max_pool2d
    yt = pool(torch.relu(xt), k, s)
    g = np.random.default_rng(6).normal(size=tuple(yt.shape)).astype(dtype)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(model.forward(x), yt.detach().numpy())
    np.testing.assert_allclose(model.backward(g), xt.grad.numpy(), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(2, 3, 7, 7, 3), (1, 2, 5, 9, (2, 4)), (2, 1, 6, 6, 6),
                                  (1, 3, 4, 4, 1), (2, 2, 5, 5, 7)], ids=str)
def test_adaptive_avgpool_matches_torch(case, dtype):
    N, C, H, W, out = case
    x = np.random.default_rng(7).normal(size=(N, C, H, W)).astype(dtype)
    check_layer(AdaptiveAvgPool2d(out), torch.nn.AdaptiveAvgPool2d(out), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_in_eval_mode_and_flatten_are_torchs(dtype):
    x = np.random.default_rng(8).normal(size=(3, 2, 4, 5)).astype(dtype)
    check_layer(Dropout(0.5).eval(), torch.nn.Dropout(0.5).eval(), x, dtype)
    check_layer(Flatten(), torch.nn.Flatten(), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("view", ["fortran", "sliced", "reversed", "broadcast", "channels"])
def test_strided_inputs_give_the_contiguous_answer(view, dtype):
    base = np.random.default_rng(9).normal(size=(3, 4, 10, 12)).astype(dtype)
    x = {"fortran": np.asfortranarray(base), "sliced": base[:, :, ::2],
         "reversed": base[::-1, :, :, ::-1], "broadcast": np.broadcast_to(base[:1], base.shape),
         "channels": base[:, 1:]}[view]
    C = x.shape[1]
    for layer in [Conv2d(C, 5, 3, 1, 1), Conv2d(C, 3, (2, 5), (3, 1), (1, 2)), MaxPool2d(2),
                  AvgPool2d(3, 2), AdaptiveAvgPool2d(3), ReLU(), Tanh(), Flatten()]:
        layer = layer.astype(dtype)
        y = np.array(layer.forward(x))
        g = np.asfortranarray(np.random.default_rng(10).normal(size=y.shape).astype(dtype))
        layer.zero_grad()
        dx = np.array(layer.backward(g))
        grads = [p.grad.copy() for p in layer.params().values()]
        np.testing.assert_array_equal(layer.forward(np.ascontiguousarray(x)), y)
        layer.zero_grad()
        np.testing.assert_array_equal(layer.backward(np.ascontiguousarray(g)), dx)
        for p, before in zip(layer.params().values(), grads):
            np.testing.assert_array_equal(p.grad, before)


def _loss_pair(loss, torch_loss, y_hat, y, dtype, **kw):
    loss_pair(loss, torch_loss, y_hat, y, dtype, value_rtol=(1e-5, 1e-12))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("scale,labels", [(1, "random"), (1e4, "random"), (1e4, "one class"),
                                          (-1e4, "random"), (1, "one column")])
def test_cross_entropy_matches_torch(scale, labels, reduction, dtype):
    rng = np.random.default_rng(11)
    C = 1 if labels == "one column" else 5
    z = (rng.normal(size=(6, C)) * scale).astype(dtype)
    y = np.full(6, C - 1) if labels != "random" else rng.integers(0, C, 6)
    _loss_pair(CrossEntropy(reduction=reduction),
               lambda a, b: F.cross_entropy(a, b, reduction=reduction), z, y, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_margin_losses_and_mse_match_torch(reduction, dtype):
    rng = np.random.default_rng(12)
    reduce = (lambda t: t.mean()) if reduction == "mean" else (lambda t: t.sum())
    for scale in (1.0, 1e4):
        y_hat = (rng.normal(size=(7, 1)) * scale).astype(dtype)
        y = rng.choice([-1.0, 1.0], size=(7, 1)).astype(dtype)
        # softplus's own threshold (20) is exact to far below these tolerances at 1e4
        _loss_pair(Logistic(reduction=reduction),
                   lambda a, b: reduce(F.softplus(-b * a, threshold=20)), y_hat, y, dtype)
        _loss_pair(Hinge(reduction=reduction), lambda a, b: reduce(torch.relu(1 - b * a)),
                   y_hat, y, dtype)
        _loss_pair(PerceptronCriterion(reduction=reduction),
                   lambda a, b: reduce(torch.relu(-b * a)), y_hat, y, dtype)
    for shape in [(4, 3), (5,), (3, 2, 2), (1, 1)]:
        a, b = (rng.normal(size=shape).astype(dtype) for _ in range(2))
        _loss_pair(MSE(reduction=reduction),
                   lambda p, q: F.mse_loss(p, q, reduction=reduction), a, b, dtype)


def _cnn(dtype):
    model = nnumba.Sequential(Conv2d(2, 3, 3, padding=1), ReLU(), MaxPool2d(2),
                              Conv2d(3, 5, 3), Tanh(), Flatten(), Linear(20, 3), seed=0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Conv2d(3, 5, 3), torch.nn.Tanh(),
                              torch.nn.Flatten(), torch.nn.Linear(20, 3))
    model.astype(dtype)
    net.to(tdtype(dtype))
    copy_params(model, net)
    return model, net


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sgd_epochs_of_a_cnn_are_torchs(reduction, dtype):
    """Momentum and weight decay, samples in order, a short last batch (23 = 4 x 5 + 3);
    the reported train loss is the mean over the samples, as torch computes it."""
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(23, 2, 8, 8)).astype(dtype), rng.integers(0, 3, 23)
    model, net = _cnn(dtype)
    history = SGDTrainer(model, CrossEntropy(reduction=reduction), lr=0.02, momentum=0.5,
                         weight_decay=0.01, batch_size=5, shuffle=False).fit(x, y, epochs=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.5, weight_decay=0.01)
    for epoch in range(2):
        seen = []
        for i in range(0, 23, 5):
            opt.zero_grad()
            losses = F.cross_entropy(net(torch.from_numpy(x[i:i + 5])),
                                     torch.from_numpy(y[i:i + 5]), reduction="none")
            seen += losses.tolist()
            (losses.mean() if reduction == "mean" else losses.sum()).backward()
            opt.step()
        assert history.epochs[epoch]["train_loss"] == pytest.approx(np.mean(seen), rel=1e-4)
    for (name, p), t in zip(model.params(), net.parameters()):
        np.testing.assert_allclose(p.value, t.detach().numpy(), **tol(dtype), err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_gradient_descent_through_fused_linear_relu_is_torchs_full_batch_step(bias, dtype):
    """The gradient of the set accumulated over batches of 8 (the last of 5) through
    the fused Linear + ReLU: one torch step on the whole set per epoch."""
    rng = np.random.default_rng(14)
    x, y = rng.normal(size=(37, 6)).astype(dtype), rng.integers(0, 4, 37)
    model = nnumba.Sequential(Linear(6, 9, bias=bias), ReLU(), Linear(9, 7), Sigmoid(),
                              Linear(7, 4, bias=bias), seed=0).astype(dtype)
    net = torch.nn.Sequential(torch.nn.Linear(6, 9, bias=bias), torch.nn.ReLU(),
                              torch.nn.Linear(9, 7), torch.nn.Sigmoid(),
                              torch.nn.Linear(7, 4, bias=bias)).to(tdtype(dtype))
    copy_params(model, net)
    GDTrainer(model, CrossEntropy(), lr=0.2, momentum=0.9, weight_decay=0.05,
              batch_size=8).fit(x, y, epochs=4)
    opt = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.9, weight_decay=0.05)
    for _ in range(4):
        opt.zero_grad()
        F.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    for (name, p), t in zip(model.params(), net.parameters()):
        np.testing.assert_allclose(p.value, t.detach().numpy(), **tol(dtype), err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_saved_and_torch_imported_models_compute_as_torch(tmp_path, dtype):
    rng = np.random.default_rng(15)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Dropout(0.3), torch.nn.Flatten(),
                              torch.nn.Linear(48, 4)).double().eval()
    model = nnumba.Sequential(Conv2d(1, 3, 3, padding=1), ReLU(), MaxPool2d(2), Dropout(0.3),
                              Flatten(), Linear(48, 4)).astype(dtype)
    np.savez(tmp_path / "w.npz", **{k: v.numpy() for k, v in net.state_dict().items()})
    load_torch_weights(model, tmp_path / "w.npz")
    x = rng.normal(size=(5, 1, 8, 8)).astype(dtype)
    expected = net(torch.from_numpy(x.astype(np.float64))).detach().numpy()
    np.testing.assert_allclose(model.predict(x), expected, **tol(dtype))
    nnumba.save(model, tmp_path / "m.npz")
    twin = nnumba.load_model(tmp_path / "m.npz")
    assert twin.dtype == model.dtype
    np.testing.assert_array_equal(twin.predict(x), model.predict(x))


def test_classifier_outputs_agree_with_each_other_and_the_sample_order():
    from nnumba.sklearn import NNClassifier
    rng = np.random.default_rng(16)
    X = rng.normal(size=(60, 4))
    y = np.array(["b", "a", "c"])[rng.integers(0, 3, 60)]
    for dtype in ("float32", "float64"):
        clf = NNClassifier(epochs=5, random_state=0, dtype=dtype,
                           model_options={"hidden": [8]}).fit(X, y)
        assert clf.classes_.tolist() == ["a", "b", "c"]
        proba = clf.predict_proba(X)
        assert proba.dtype == np.dtype(dtype)
        np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
        np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
        np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-5)
        order = rng.permutation(60)
        np.testing.assert_allclose(clf.predict_proba(X[order]), proba[order], rtol=1e-5)


def test_perceptron_classifier_is_sklearns_one_against_the_rest():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import Perceptron

    from nnumba.sklearn import PerceptronClassifier
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    ours = PerceptronClassifier(max_epochs=5).fit(X, names)
    theirs = Perceptron(shuffle=False, eta0=1.0, alpha=0.0, tol=None, max_iter=5).fit(X, names)
    np.testing.assert_array_equal(ours.coef_, theirs.coef_)
    np.testing.assert_array_equal(ours.intercept_, theirs.intercept_)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
