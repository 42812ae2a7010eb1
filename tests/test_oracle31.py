"""Oracle 31: inference, eval-mode and fused-step paths against torch 2.13 (AlexNet at
batch 1-3 and several input sizes, predict in batches, Dropout, ~40 random specs whose
steps fuse). No mismatch was found: these keep it so. Tolerance: max|nnumba - torch| /
max|torch| over the tensor; float32 2e-5 (outputs) / 1e-4 (gradients), float64 1e-10."""
import numpy as np
import pytest

import nnumba
from nnumba.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
nn = torch.nn


def _twin(spec, dtype):
    layers = []
    for item in spec:
        args = {k: v for k, v in item.items() if k not in ("type", "seed", "resample")}
        layers.append(getattr(nn, item["type"])(**args))
    return nn.Sequential(*layers).to(torch.float64 if dtype == np.float64 else torch.float32)


def _copy(model, net):
    with torch.no_grad():
        for (_, p), t in zip(model.params(), net.parameters(), strict=True):
            t.copy_(torch.from_numpy(np.array(p.value)))


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.max(np.abs(b))
    return 0.0 if scale == 0 and np.array_equal(a, b) else float(np.max(np.abs(a - b)) / scale)


def _ref(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x))).numpy()


@pytest.fixture(scope="module")
def alexnet():
    m = nnumba.build("alexnet", seed=0).eval()
    net = _twin(m.spec(), np.float32).eval()
    _copy(m, net)
    return m, net


@pytest.mark.parametrize("n,size", [(1, 224), (2, 127), (3, 63), (1, 160)])
def test_alexnet_eval_float32(alexnet, n, size):
    m, net = alexnet
    x = np.random.default_rng(size + n).standard_normal((n, 3, size, size)).astype(np.float32)
    y = m.forward(x)
    assert y.shape == (n, 1000) and y.dtype == np.float32
    assert _rel(y, _ref(net, x)) < 2e-5


def test_alexnet_eval_float64(alexnet):
    m = alexnet[0].copy().astype(np.float64).eval()
    net = _twin(m.spec(), np.float64).eval()
    _copy(m, net)
    x = np.random.default_rng(3).standard_normal((2, 3, 100, 100))
    assert _rel(m.forward(x), _ref(net, x)) < 1e-10


def test_alexnet_reuse_buffers_session(alexnet):
    """The benchmark's inference session: outputs right across batch and size changes,
    the input untouched, and writing into an output (the caller's) harmless."""
    m, net = alexnet
    m = m.copy().eval()
    m.reuse_buffers(True)
    rng = np.random.default_rng(7)
    try:
        for n, size in [(2, 127), (2, 127), (1, 127), (2, 96), (2, 127)]:
            x = rng.standard_normal((n, 3, size, size)).astype(np.float32)
            xc = x.copy()
            y = m.forward(x)
            assert np.array_equal(x, xc)
            assert _rel(y, _ref(net, x)) < 2e-5
            y[...] = np.nan  # the caller's to write into until the next forward
        assert _rel(m.forward(x), _ref(net, x)) < 2e-5
        p = m.predict(rng.standard_normal((5, 3, 80, 80)).astype(np.float32), batch_size=2)
        assert p.shape == (5, 1000) and np.isfinite(p).all()
    finally:
        m.reuse_buffers(False)


def test_alexnet_too_small_input_is_a_shape_error(alexnet):
    with pytest.raises(ShapeError, match="smaller than the pooling window"):
        alexnet[0].forward(np.zeros((1, 3, 62, 62), np.float32))


@pytest.mark.parametrize("name", ["lenet", "mlp"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_batches_vs_torch(name, dtype):
    m = nnumba.build(name, seed=0).astype(dtype)
    net = _twin(m.spec(), dtype).eval()
    _copy(m, net)
    x = np.random.default_rng(0).random((203, 1, 28, 28)).astype(dtype)
    ref = _ref(net, x)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    m.train()
    for bs in (1000, 203, 7, 50):  # 203 = 29 * 7 = 4 * 50 + 3
        p = m.predict(x, batch_size=bs)
        assert p.shape == (203, 10) and p.dtype == dtype
        assert _rel(p, ref) < tol
    assert m.training  # predict restores the mode
    assert _rel(m.predict(x[::3], batch_size=10), ref[::3]) < tol  # strided input
    m.reuse_buffers(True)
    assert _rel(m.predict(x, batch_size=9), ref) < tol


def test_predict_float64_into_float32_model_is_refused():
    # README: "Wrong dtypes ... are refused before any kernel runs"
    m = nnumba.build("mlp", seed=0)
    with pytest.raises(DTypeError, match="astype"):
        m.predict(np.zeros((3, 1, 28, 28)))


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
def test_dropout_eval_identity_and_train_mask(p):
    from nnumba.layers import Dropout, Linear, ReLU
    m = nnumba.Sequential(Linear(20, 50), Dropout(p, seed=1), ReLU(), Linear(50, 4),
                          seed=0).astype(np.float64)
    net = nn.Sequential(nn.Linear(20, 50), nn.Dropout(p), nn.ReLU(), nn.Linear(50, 4)).double()
    _copy(m, net)
    x = np.random.default_rng(0).standard_normal((64, 20))
    m.eval(); net.eval()
    assert _rel(m.forward(x), _ref(net, x)) < 1e-10
    assert _rel(m.predict(x), _ref(net, x)) < 1e-10
    drop = Dropout(p, seed=2).astype(np.float64).train()
    a = np.random.default_rng(1).standard_normal((200, 50))
    b = drop.forward(a)
    keep = b != 0
    if p < 1:
        np.testing.assert_allclose(b[keep], a[keep] / (1 - p), rtol=1e-15)
        assert abs((~keep).mean() - p) < 0.05
    else:
        assert not keep.any()
    g = np.random.default_rng(2).standard_normal(a.shape)
    dx = drop.backward(g)
    expect = np.where(keep, g / (1 - p) if p < 1 else 0.0, 0.0)
    np.testing.assert_allclose(dx, expect, rtol=1e-15)


# ---- fused steps: random small specs against torch autograd, float64 ----------------

def _out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def _random_spec(rng):
    """Conv1d/2d/3d, ReLU/Tanh/Sigmoid, Max/Avg pools with stride != kernel, odd sizes,
    padding, AdaptiveAvgPool2d, then Flatten, Linear, activation, Linear."""
    kind = rng.choice(["1d", "2d", "3d"], p=[0.3, 0.5, 0.2])
    acts = ["ReLU", "Tanh", "Sigmoid", "ReLU", "ReLU"]
    spec = []
    if kind == "1d":
        shape = (int(rng.integers(1, 4)), int(rng.integers(9, 30)))
        inp = shape
        for _ in range(int(rng.integers(1, 3))):
            k, s = int(rng.integers(1, 5)), int(rng.integers(1, 3))
            p, D = int(rng.integers(0, k)), int(rng.choice([2, 3, 4, 8]))
            lo = _out(shape[1], k, s, p)
            if lo < 2:
                break
            spec.append(dict(type="Conv1d", in_channels=shape[0], out_channels=D, kernel_size=k,
                             stride=s, padding=p))
            shape = (D, lo)
            spec.append(dict(type=str(rng.choice(acts))))
            pk = int(rng.integers(1, 4))
            ps = int(rng.choice([pk, 1, 2]))
            if _out(lo, pk, ps, 0) >= 1 and rng.random() < 0.8:
                spec.append(dict(type=str(rng.choice(["MaxPool1d", "MaxPool1d", "AvgPool1d"])),
                                 kernel_size=pk, stride=ps))
                shape = (D, _out(lo, pk, ps, 0))
    elif kind == "2d":
        shape = (int(rng.integers(1, 4)), int(rng.integers(8, 20)), int(rng.integers(8, 20)))
        inp = shape
        for _ in range(int(rng.integers(1, 3))):
            kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            k = kh if rng.random() < 0.5 else [kh, kw]
            s = int(rng.integers(1, 3)) if rng.random() < 0.6 else \
                [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
            p, D = int(rng.integers(0, min(kh, kw))), int(rng.choice([4, 8, 3, 4]))
            kk = k if isinstance(k, list) else [k, k]
            ss = s if isinstance(s, list) else [s, s]
            ho, wo = _out(shape[1], kk[0], ss[0], p), _out(shape[2], kk[1], ss[1], p)
            if min(ho, wo) < 2:
                break
            spec.append(dict(type="Conv2d", in_channels=shape[0], out_channels=D, kernel_size=k,
                             stride=s, padding=p))
            shape = (D, ho, wo)
            spec.append(dict(type=str(rng.choice(acts))))
            r = rng.random()
            if r < 0.6:
                pk = int(rng.choice([2, 3]))
                ps = int(rng.choice([pk, pk, 1, 2]))
                if rng.random() < 0.3:
                    pk = [pk, int(rng.choice([2, 3]))]
                pkk = pk if isinstance(pk, list) else [pk, pk]
                if _out(ho, pkk[0], ps, 0) >= 1 and _out(wo, pkk[1], ps, 0) >= 1:
                    spec.append(dict(type=str(rng.choice(["MaxPool2d", "MaxPool2d", "AvgPool2d"])),
                                     kernel_size=pk, stride=ps))
                    shape = (D, _out(ho, pkk[0], ps, 0), _out(wo, pkk[1], ps, 0))
            elif r < 0.8:
                o = int(rng.integers(1, 5)) if rng.random() < 0.6 else \
                    [int(rng.integers(1, 5)), int(rng.integers(1, 5))]
                spec.append(dict(type="AdaptiveAvgPool2d", output_size=o))
                oo = o if isinstance(o, list) else [o, o]
                shape = (D, oo[0], oo[1])
    else:
        C = int(rng.integers(1, 3))
        inp = (C, int(rng.integers(3, 6)), int(rng.integers(5, 10)), int(rng.integers(5, 10)))
        k, s = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        p, D = int(rng.integers(0, k)), int(rng.choice([2, 4]))
        if min(_out(n, k, s, p) for n in inp[1:]) >= 1:
            spec.append(dict(type="Conv3d", in_channels=C, out_channels=D, kernel_size=k,
                             stride=s, padding=p))
            spec.append(dict(type=str(rng.choice(acts))))
    if not spec:
        return None
    nf = int(np.prod(nnumba.Sequential.from_spec(spec, seed=0).output_shape(inp)))
    spec += [dict(type="Flatten"), dict(type="Linear", in_features=nf, out_features=5),
             dict(type=str(rng.choice(acts))), dict(type="Linear", in_features=5, out_features=3)]
    return spec, inp


def _conv_pool_spec(rng):
    """Conv2d -> ReLU -> MaxPool2d shaped for the one-pass Conv2dReLUMaxPool2d (filters
    in fours, pool 2 or 3 wide) and around its edges (stride != kernel, 5 filters)."""
    C, D, k = int(rng.integers(1, 5)), int(rng.choice([4, 8, 12, 5])), int(rng.integers(1, 6))
    k2 = [k, int(rng.integers(1, 6))] if rng.random() < 0.3 else k
    s, p = int(rng.choice([1, 1, 2, 3])), int(rng.integers(0, k))
    pk = int(rng.choice([2, 3]))
    pk2 = [int(rng.choice([2, 3, 4])), pk] if rng.random() < 0.3 else pk
    ps = pk if rng.random() < 0.7 else \
        ([int(rng.choice([1, 2, 3])), pk] if rng.random() < 0.5 else int(rng.choice([1, 2])))
    H, W = int(rng.integers(6, 40)), int(rng.integers(6, 40))
    kk = k2 if isinstance(k2, list) else [k, k]
    ho, wo = _out(H, kk[0], s, p), _out(W, kk[1], s, p)
    pkk = pk2 if isinstance(pk2, list) else [pk, pk]
    pss = ps if isinstance(ps, list) else [ps, ps]
    if min(ho, wo) < 1 or _out(ho, pkk[0], pss[0], 0) < 1 or _out(wo, pkk[1], pss[1], 0) < 1:
        return None
    spec = [dict(type="Conv2d", in_channels=C, out_channels=D, kernel_size=k2, stride=s,
                 padding=p), dict(type="ReLU"), dict(type="MaxPool2d", kernel_size=pk2, stride=ps)]
    nf = int(np.prod(nnumba.Sequential.from_spec(spec, seed=0).output_shape((C, H, W))))
    return spec + [dict(type="Flatten"), dict(type="Linear", in_features=nf, out_features=3)], \
        (C, H, W)


def _check_against_autograd(spec, inp, seed, dtype=np.float64, tol=1e-10):
    m = nnumba.Sequential.from_spec(spec, seed=seed).astype(dtype)
    net = _twin(spec, dtype)
    _copy(m, net)
    m.input_grad = True
    rng = np.random.default_rng(seed + 100)
    for n in (1, 2, 7):
        x = rng.standard_normal((n,) + tuple(inp)).astype(dtype)
        m.train(); net.train(); m.zero_grad(); net.zero_grad()
        y = m.forward(x)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        yt = net(xt)
        assert _rel(y, yt.detach().numpy()) < tol, (spec, n, "forward")
        g = rng.standard_normal(y.shape).astype(dtype)
        dx = m.backward(g)
        yt.backward(torch.from_numpy(g))
        assert _rel(dx, xt.grad.numpy()) < tol, (spec, n, "dx")
        for (name, p), t in zip(m.params(), net.parameters()):
            assert _rel(p.grad, t.grad.numpy()) < tol, (spec, n, name)
        m.eval(); net.eval()
        assert _rel(m.forward(x), _ref(net, x)) < tol, (spec, n, "eval")
    return [type(s).__name__ for s in m.steps]


def test_random_specs_fused_steps_vs_autograd_float64():
    seen = set()
    for seed in range(50):
        made = _random_spec(np.random.default_rng(seed))
        if made is not None:
            seen.update(_check_against_autograd(*made, seed=seed))
    # the fused steps this oracle is for were exercised
    assert {"ReLUMaxPool1d", "ReLUMaxPool2d", "LinearReLU", "Conv2dReLUMaxPool2d",
            "Conv3d", "AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d"} <= seen, seen


def test_conv_relu_maxpool_one_pass_vs_autograd_float64():
    seen = set()
    for seed in range(30):
        made = _conv_pool_spec(np.random.default_rng(seed))
        if made is not None:
            seen.add(_check_against_autograd(*made, seed=seed)[0])
    assert seen == {"Conv2dReLUMaxPool2d", "Conv2d"}, seen


def test_random_specs_float32():
    for seed in range(20):
        made = _random_spec(np.random.default_rng(seed))
        if made is not None:
            _check_against_autograd(*made, seed=seed, dtype=np.float32, tol=1e-4)
