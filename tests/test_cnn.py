"""Convolution and pooling layers and the lecture's CNN, against PyTorch and NumPy."""
import numpy as np
import pytest

import nnumba
from nnumba.layers.conv import Conv1d, Conv2d
from nnumba.layers.pool import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from nnumba.losses import CrossEntropy

rng = np.random.default_rng(5)


def test_lecture_1d_example_is_exact():
    # (0,0,0,0,1,2,3,4,4,4,4) (x) (-1,1) = (0,0,0,1,1,1,1,0,0,0)
    conv = Conv1d(1, 1, 2, bias=False).astype(np.float64)
    conv.weight.value[...] = [[[-1.0, 1.0]]]
    x = np.array([[[0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4]]], np.float64)
    assert conv.forward(x).ravel().tolist() == [0, 0, 0, 1, 1, 1, 1, 0, 0, 0]


def test_output_size_is_the_lectures():
    assert Conv2d(1, 32, 5).output_shape((1, 28, 28)) == (32, 24, 24)
    assert MaxPool2d(3).output_shape((32, 24, 24)) == (32, 8, 8)
    assert Conv2d(3, 8, 11, stride=4, padding=2).output_shape((3, 224, 224)) == (8, 55, 55)


def test_input_smaller_than_kernel_is_refused():
    with pytest.raises(ValueError, match="smaller than the kernel"):
        Conv2d(1, 2, 5).forward(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(nnumba.ShapeError, match=r"Conv2d: expected input of shape \(N, 3, \*, \*\)"):
        Conv2d(3, 2, 1).forward(np.zeros((1, 1, 4, 4), np.float32))


def numpy_pool(x, k, s, reduce):
    n, c, h, w = x.shape
    ho, wo = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    out = np.empty((n, c, ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = reduce(x[:, :, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]],
                                     axis=(2, 3))
    return out


@pytest.mark.parametrize("cls,reduce", [(MaxPool2d, np.max), (AvgPool2d, np.mean)])
@pytest.mark.parametrize("k,s", [(2, None), (3, None), (3, 2), (2, 1)])
def test_pool2d_matches_numpy(cls, reduce, k, s):
    x = rng.normal(size=(2, 3, 9, 8))
    layer = cls(k, s).astype(np.float64)
    expect = numpy_pool(x, (k, k), (s or k, s or k), reduce)
    np.testing.assert_allclose(layer.forward(x), expect, rtol=1e-12)


@pytest.mark.parametrize("cls,reduce", [(MaxPool1d, np.max), (AvgPool1d, np.mean)])
def test_pool1d_matches_numpy(cls, reduce):
    x = rng.normal(size=(2, 3, 10))
    expect = numpy_pool(x[:, :, None, :], (1, 3), (1, 2), reduce)[:, :, 0, :]
    np.testing.assert_allclose(cls(3, 2).astype(np.float64).forward(x), expect, rtol=1e-12)


def test_max_pool_ties_go_to_the_first_in_row_major_order():
    x = np.ones((1, 1, 2, 2), np.float64)
    layer = MaxPool2d(2).astype(np.float64)
    layer.forward(x)
    dx = layer.backward(np.ones((1, 1, 1, 1)))
    assert dx.ravel().tolist() == [1, 0, 0, 0]


def lenet_torch(torch, model):
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(3), nn.Conv2d(32, 64, 5),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 256), nn.ReLU(),
                        nn.Linear(256, 10)).double()
    with torch.no_grad():
        for (_, p), t in zip(model.params(), net.parameters()):
            t.copy_(torch.from_numpy(p.value))
    return net


def test_lenet_logits_and_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    model = nnumba.build("lenet", seed=0).astype(np.float64)
    net = lenet_torch(torch, model)
    x = rng.random((6, 1, 28, 28))
    y = rng.integers(0, 10, 6)
    loss = CrossEntropy()
    value = loss.forward(model.forward(x), y)
    model.backward(loss.backward())
    xt = torch.from_numpy(x)
    t_loss = torch.nn.functional.cross_entropy(net(xt), torch.from_numpy(y))
    t_loss.backward()
    assert value == pytest.approx(t_loss.item(), rel=1e-10)
    np.testing.assert_allclose(model.predict(x), net(xt).detach().numpy(), rtol=1e-10, atol=1e-12)
    for (name, p), t in zip(model.params(), net.parameters()):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)


def test_fused_relu_pool_equals_separate_layers():
    # Sequential fuses ReLU + MaxPool2d; a model split in two cannot, so compare.
    x = rng.normal(size=(3, 2, 7, 7))
    conv = Conv2d(2, 4, 2)
    fused = nnumba.Sequential(conv, nnumba.layers.ReLU(), MaxPool2d(3, 2)).astype(np.float64)
    assert [type(s).__name__ for s in fused.steps] == ["Conv2d", "ReLUMaxPool2d"]
    assert fused.steps[1].label == "ReLU #1 + MaxPool2d #2"
    assert [item["type"] for item in fused.spec()] == ["Conv2d", "ReLU", "MaxPool2d"]
    relu, pool = nnumba.layers.ReLU().astype(np.float64), MaxPool2d(3, 2).astype(np.float64)
    fused.input_grad = True
    g = rng.normal(size=(3, 4, 2, 2))
    out = fused.forward(x).copy()
    dx = fused.backward(g).copy()
    a = fused.layers[0].forward(x)
    expect = pool.forward(relu.forward(a))
    np.testing.assert_allclose(out, expect, rtol=1e-12)
    da = relu.backward(pool.backward(g))
    fused.layers[0].set_flags(needs_input_grad=True)
    fused.layers[0].forward(x)
    np.testing.assert_allclose(dx, fused.layers[0].backward(da), rtol=1e-12)


@pytest.mark.slow
def test_lenet_learns_the_embedded_digits():
    from nnumba.data import load_dataset
    data = load_dataset("mnist-5k")
    model = nnumba.build("lenet", seed=0)
    history = nnumba.SGDTrainer(model, CrossEntropy(), lr=0.05, momentum=0.9, seed=0).fit(
        data.x_train, data.y_train, epochs=2, x_test=data.x_test, y_test=data.y_test)
    assert history.last("test_accuracy") > 0.9
