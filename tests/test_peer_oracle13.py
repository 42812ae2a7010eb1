"""Peer-oracle round 13: nnumba against PyTorch / scikit-learn where
earlier rounds (test_peer_oracle.py, test_peer_oracle12.py, test_sklearn_*.py) do not
reach: the two im2col + GEMM convolution forwards (image by image, sequential and one
image per thread, and batch-inner) now that their outputs are filled with the bias
and the GEMM accumulates into them (bias present / absent, batch 1-5, float64,
11x11 stride 4, 5x5 pad 2, 3x3 pad 1, the 64-output boundary); 1-D convolutions on
the GEMM paths; Linear and pools at odd shapes; every loss at a batch of one; the
lecture CNN's optimizer steps through nnumba.optim.SGD; AlexNet's inference and
gradient; multinomial GD against sklearn's unpenalised LogisticRegression; the
classifier's conventions beside MLPClassifier's; the perceptron on gappy labels."""
import warnings

import numpy as np
import pytest

import nnumba
from nnumba.kernels.cpu import conv as kconv
from nnumba.kernels.cpu.conv_winograd import uses_winograd
from nnumba.kernels.geometry import pair
from nnumba.layers import (AvgPool1d, AvgPool2d, Conv1d, Conv2d, Linear, MaxPool1d,
                           MaxPool2d, ReLUMaxPool1d, ReLUMaxPool2d)
from nnumba.losses import MSE, CrossEntropy, Hinge, Logistic, PerceptronCriterion

torch = pytest.importorskip("torch")
from torch_oracle import check_layer, copy_params, loss_pair, tdtype, tol  # noqa: E402
F = torch.nn.functional
T = torch.nn
DTYPES = [np.float32, np.float64]


def forward_path(N, C, k, s, Ho, Wo):
    kh, kw = pair(k)
    if kconv._use_direct(C, kh, kw, Ho, Wo, pair(s)[0]):
        return "direct"
    if uses_winograd(N, kh, kw, *pair(s), Ho, Wo):
        return "winograd"
    return "gemm_images" if Ho * Wo >= kconv.IMAGE_GEMM else "gemm_batch_inner"


# (N, C, H, W, D, kernel, stride, padding): the GEMM forwards' bias fill + accumulate
GEMM_CONV2D = [
    (1, 3, 35, 35, 64, 11, 4, 2), (2, 3, 35, 35, 64, 11, 4, 2), (3, 3, 39, 39, 65, 11, 4, 2),
    (1, 16, 12, 12, 24, 5, 1, 2), (3, 17, 9, 11, 5, 5, 1, 2), (1, 16, 16, 16, 8, 5, 1, 2),
    (1, 32, 10, 10, 13, 3, 1, 1), (1, 32, 7, 7, 13, 3, 1, 1), (3, 33, 9, 9, 7, 3, 2, 1),
    (2, 15, 20, 20, 3, 3, 2, 1), (1, 16, 10, 10, 1, 3, 1, 0), (2, 16, 15, 15, 3, 3, 2, 0),
    (2, 64, 12, 12, 5, 2, 3, 1), (1, 1, 30, 30, 2, 13, 4, 6), (5, 9, 19, 19, 2, 4, 2, 1),
]


def _path_of(case):
    N, C, H, W, D, k, s, p = case
    _, Ho, Wo = Conv2d(C, D, k, s, p).output_shape((C, H, W))
    return forward_path(N, C, k, s, Ho, Wo)


def test_the_gemm_cases_run_both_gemm_forwards_at_batch_one_and_more():
    paths = {(_path_of(c), c[0] == 1) for c in GEMM_CONV2D}
    assert paths == {("gemm_images", True), ("gemm_images", False),
                     ("gemm_batch_inner", True), ("gemm_batch_inner", False)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", GEMM_CONV2D, ids=str)
def test_conv2d_gemm_forward_with_and_without_bias_matches_torch(case, bias, dtype):
    N, C, H, W, D, k, s, p = case
    layer = Conv2d(C, D, k, s, p, bias=bias)
    if bias:  # large enough that a bias dropped, doubled or misplaced shows
        layer.params()["bias"].value[:] = np.random.default_rng(5).normal(size=D) * 3
    x = np.random.default_rng(1).normal(size=(N, C, H, W)).astype(dtype)
    check_layer(layer, T.Conv2d(C, D, k, s, p, bias=bias), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_image_gemm_one_image_per_thread_matches_torch(dtype, monkeypatch):
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2 for the per-thread image GEMMs")
    from nnumba.kernels.cpu import conv_gemm
    ran = []
    real = conv_gemm.run_blocks
    monkeypatch.setattr(conv_gemm, "run_blocks",
                        lambda fn, *a: (ran.append(fn.__name__), real(fn, *a))[1])
    saved = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        for N, C, H, D, k, s, p in [(2, 3, 35, 64, 11, 4, 2), (3, 16, 12, 24, 5, 1, 2),
                                    (5, 9, 19, 2, 4, 2, 1)]:
            for bias in (True, False):
                x = np.random.default_rng(N).normal(size=(N, C, H, H)).astype(dtype)
                layer = Conv2d(C, D, k, s, p, bias=bias)
                if bias:
                    layer.params()["bias"].value[:] = 7.0
                check_layer(layer, T.Conv2d(C, D, k, s, p, bias=bias), x, dtype)
    finally:
        numba.set_num_threads(saved)
    assert "_images_in_thread" in ran


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_gemm_conv_called_again_at_other_batch_sizes_refills_the_bias(dtype):
    layer = Conv2d(3, 64, 11, 4, 2).astype(dtype)
    layer.params()["bias"].value[:] = 7.0
    net = T.Conv2d(3, 64, 11, 4, 2).to(tdtype(dtype))
    with torch.no_grad():
        net.weight.copy_(torch.from_numpy(layer.params()["weight"].value.copy()))
        net.bias.fill_(7.0)
    for N in (3, 1, 2, 3, 1):
        x = np.random.default_rng(N).normal(size=(N, 3, 35, 35)).astype(dtype)
        np.testing.assert_allclose(layer.forward(x), net(torch.from_numpy(x)).detach().numpy(),
                                   **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", [(1, 64, 100, 5, 3, 1, 1), (3, 64, 100, 7, 3, 1, 1),
                                  (2, 50, 130, 3, 5, 1, 2), (1, 3, 227, 9, 11, 4, 2),
                                  (2, 33, 40, 65, 7, 9, 4), (2, 200, 20, 3, 1, 1, 0)], ids=str)
def test_conv1d_on_the_gemm_paths_matches_torch(case, bias, dtype):
    N, C, L, D, k, s, p = case
    x = np.random.default_rng(2).normal(size=(N, C, L)).astype(dtype)
    check_layer(Conv1d(C, D, k, s, p, bias=bias), T.Conv1d(C, D, k, s, p, bias=bias), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 7, 3), (3, 1000, 3), (129, 5, 257),
                                   (2, 4097, 1)], ids=str)
def test_linear_at_odd_shapes_matches_torch(shape, bias, dtype):
    N, i, o = shape
    x = np.random.default_rng(3).normal(size=(N, i)).astype(dtype)
    check_layer(Linear(i, o, bias), T.Linear(i, o, bias), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(1, 1, 7, 7, 3, 2), (2, 3, 9, 11, 2, 3), (3, 7, 13, 5, (3, 2), (1, 2)),
                                  (2, 1, 10, 10, 1, 3), (1, 65, 15, 15, 3, 2)], ids=str)
def test_pool2d_with_stride_other_than_kernel_matches_torch(case, dtype):
    N, C, H, W, k, s = case
    x = np.random.default_rng(4).normal(size=(N, C, H, W)).astype(dtype)
    check_layer(MaxPool2d(k, s), T.MaxPool2d(k, s), x, dtype)
    check_layer(AvgPool2d(k, s), T.AvgPool2d(k, s), x, dtype)
    check_layer(ReLUMaxPool2d(k, s), T.Sequential(T.ReLU(), T.MaxPool2d(k, s)), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(1, 1, 7, 3, 2), (2, 3, 11, 2, 3), (1, 5, 300, 3, None),
                                  (3, 2, 9, 9, None), (1, 3, 10, 1, 4)], ids=str)
def test_pool1d_with_stride_other_than_kernel_matches_torch(case, dtype):
    N, C, L, k, s = case
    x = np.random.default_rng(5).normal(size=(N, C, L)).astype(dtype)
    check_layer(MaxPool1d(k, s), T.MaxPool1d(k, s), x, dtype)
    check_layer(AvgPool1d(k, s), T.AvgPool1d(k, s), x, dtype)
    check_layer(ReLUMaxPool1d(k, s), T.Sequential(T.ReLU(), T.MaxPool1d(k, s)), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_every_loss_at_a_batch_of_one_and_one_output_is_torchs(reduction, dtype):
    rng = np.random.default_rng(6)
    red = (lambda t: t.mean()) if reduction == "mean" else (lambda t: t.sum())
    for N, C in [(1, 1), (1, 2), (1, 10), (3, 1), (257, 3)]:
        loss_pair(CrossEntropy(reduction=reduction),
                   lambda a, b: F.cross_entropy(a, b, reduction=reduction),
                   (rng.normal(size=(N, C)) * 5).astype(dtype), rng.integers(0, C, N), dtype)
    for shape in [(1,), (1, 1), (7,), (2, 3, 4, 5)]:
        loss_pair(MSE(reduction=reduction), lambda p, q: F.mse_loss(p, q, reduction=reduction),
                   rng.normal(size=shape).astype(dtype), rng.normal(size=shape).astype(dtype), dtype)
    for shape in [(1,), (1, 1), (9,)]:
        a = (rng.normal(size=shape) * 3).astype(dtype)
        s = np.where(rng.random(shape) > 0.5, 1, -1)
        for labels in (s.astype(dtype), s.astype(np.int64)):
            loss_pair(Logistic(reduction=reduction), lambda p, q: red(-F.logsigmoid(q * p)),
                       a, labels, dtype)
            loss_pair(Hinge(lam=0.3, reduction=reduction),  # the penalty is the trainers'
                       lambda p, q: red(torch.relu(1 - q * p)), a, labels, dtype)
            loss_pair(PerceptronCriterion(reduction=reduction),
                       lambda p, q: red(torch.relu(-q * p)), a, labels, dtype)


def _torch_lenet():
    return T.Sequential(T.Conv2d(1, 32, 5), T.ReLU(), T.MaxPool2d(3), T.Conv2d(32, 64, 5), T.ReLU(),
                        T.MaxPool2d(2), T.Flatten(), T.Linear(256, 256), T.ReLU(),
                        T.Linear(256, 10))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N", [1, 3, 16])
def test_lenet_steps_of_optim_sgd_with_momentum_and_decay_are_torchs(N, dtype):
    from nnumba.optim import SGD
    model = nnumba.build("lenet", seed=3).astype(dtype)
    net = _torch_lenet().to(tdtype(dtype))
    copy_params(model, net)
    opt, loss = SGD(model, lr=0.05, momentum=0.9, weight_decay=5e-4), CrossEntropy()
    topt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(N)
    for _ in range(4):
        x, y = rng.normal(size=(N, 1, 28, 28)).astype(dtype), rng.integers(0, 10, N)
        model.zero_grad()
        value = loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()
        topt.zero_grad()
        ref = F.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
        ref.backward()
        topt.step()
        assert value == pytest.approx(ref.item(), rel=1e-5 if dtype == np.float32 else 1e-12)
    for (name, p), t in zip(model.params(), net.parameters()):
        np.testing.assert_allclose(p.value, t.detach().numpy(), **tol(dtype, 10), err_msg=name)


def _torch_alexnet(classes=1000, p=0.5):
    return T.Sequential(
        T.Conv2d(3, 64, 11, 4, 2), T.ReLU(), T.MaxPool2d(3, 2),
        T.Conv2d(64, 192, 5, padding=2), T.ReLU(), T.MaxPool2d(3, 2),
        T.Conv2d(192, 384, 3, padding=1), T.ReLU(), T.Conv2d(384, 256, 3, padding=1), T.ReLU(),
        T.Conv2d(256, 256, 3, padding=1), T.ReLU(), T.MaxPool2d(3, 2), T.AdaptiveAvgPool2d(6),
        T.Flatten(), T.Dropout(p), T.Linear(9216, 4096), T.ReLU(), T.Dropout(p),
        T.Linear(4096, 4096), T.ReLU(), T.Linear(4096, classes))


@pytest.mark.slow
@pytest.mark.parametrize("dtype, N, side", [(np.float32, 1, 224), (np.float32, 2, 224),
                                            (np.float64, 3, 67)], ids=str)
def test_alexnet_inference_is_torchs(dtype, N, side):
    model = nnumba.build("alexnet", seed=1).astype(dtype)
    net = _torch_alexnet().to(tdtype(dtype)).eval()
    copy_params(model, net)
    x = np.random.default_rng(N).normal(size=(N, 3, side, side)).astype(dtype)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    scale = np.abs(ref).max()
    for batch_size in (1000, 1):
        out = model.predict(x, batch_size=batch_size)
        np.testing.assert_allclose(out, ref, rtol=0, atol=scale * (1e-5 if dtype == np.float32 else 1e-12))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_alexnet_gradients_are_torchs(dtype):
    model = nnumba.build("alexnet", seed=2, num_classes=7, dropout=0.0).astype(dtype)
    net = _torch_alexnet(7, 0.0).to(tdtype(dtype))
    copy_params(model, net)
    model.input_grad = True
    x, y = np.random.default_rng(0).normal(size=(2, 3, 67, 67)).astype(dtype), np.array([3, 5])
    loss = CrossEntropy(reduction="sum")
    model.zero_grad()
    value = loss.forward(model.forward(x), y)
    dx = model.backward(loss.backward())
    xt = torch.from_numpy(x).requires_grad_(True)
    ref = F.cross_entropy(net(xt), torch.from_numpy(y), reduction="sum")
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-5 if dtype == np.float32 else 1e-12)
    rel = 1e-4 if dtype == np.float32 else 1e-11   # of each array's largest value
    for got, want in [(dx, xt.grad.numpy())] + [(p.grad, t.grad.numpy()) for (_, p), t in
                                                  zip(model.params(), net.parameters())]:
        np.testing.assert_allclose(got, want, rtol=0, atol=rel * np.abs(want).max())


def test_multinomial_gd_reaches_sklearns_unpenalised_logistic_regression():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    from nnumba.sklearn import NNClassifier
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    y = np.array([10, 20, 30, 40])[np.argmax(X @ rng.normal(size=(3, 4))
                                             + rng.gumbel(size=(150, 4)) * 1.5, axis=1)]
    ours = NNClassifier([{"type": "Linear", "in_features": 3, "out_features": 4}], trainer="gd",
                        epochs=4000, lr=0.5, momentum=0.9, dtype="float64",
                        random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # penalty=None, deprecated in 1.8
        theirs = LogisticRegression(penalty=None, tol=1e-12, max_iter=10000).fit(X, y)
    assert ours.classes_.tolist() == theirs.classes_.tolist()
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_classifier_conventions_are_mlpclassifiers():
    pytest.importorskip("sklearn")
    from sklearn.exceptions import DataConversionWarning
    from sklearn.neural_network import MLPClassifier

    from nnumba.sklearn import NNClassifier
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 3)), np.where(rng.random(40) > 0.5, "y", "n")
    for est in (NNClassifier(model_options={"hidden": [4]}, epochs=2, random_state=0),
                MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", DataConversionWarning)
            with pytest.raises(DataConversionWarning):
                est.fit(X, y.reshape(-1, 1))   # a column of labels: warned, as sklearn does
            est.fit(X, y)
            assert est.classes_.tolist() == ["n", "y"]
            assert est.predict_proba(X[:1]).shape == (1, 2)
            assert est.predict([[0.1, 0.2, 0.3]]).shape == (1,)
            for bad in (np.zeros(3), np.zeros((2, 4))):
                with pytest.raises(ValueError):
                    est.predict(bad)
            np.testing.assert_allclose(np.exp(est.predict_log_proba(X)), est.predict_proba(X),
                                       rtol=1e-5)
            twin = type(est)(**est.get_params())
            twin.partial_fit(X[:30], np.array([1, 2] * 15), classes=[1, 2, 3])
            assert twin.classes_.tolist() == [1, 2, 3]
            assert twin.predict_proba(X).shape == (40, 3)


@pytest.mark.parametrize("epochs", [1, 3, 50])
def test_perceptron_classifier_on_gappy_integer_labels_and_float32_is_sklearns(epochs):
    pytest.importorskip("sklearn")
    from sklearn.linear_model import Perceptron

    from nnumba.sklearn import PerceptronClassifier
    rng = np.random.default_rng(epochs)
    X = (rng.normal(size=(90, 5)) * 3).astype(np.float32)
    y = np.array([2, 5, 9, 11])[rng.integers(0, 4, 90)]
    ours = PerceptronClassifier(max_epochs=epochs).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Perceptron(shuffle=False, eta0=1.0, alpha=0.0, tol=None,
                            max_iter=epochs).fit(X.astype(np.float64), y)
    assert ours.classes_.tolist() == theirs.classes_.tolist()
    np.testing.assert_array_equal(ours.coef_, theirs.coef_)
    np.testing.assert_array_equal(ours.intercept_, theirs.intercept_)
    np.testing.assert_array_equal(ours.decision_function(X), theirs.decision_function(X))
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
