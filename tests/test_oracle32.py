"""Oracle 32: the bridges between nnumba and PyTorch, and the model's bookkeeping.

A state_dict named exactly as the model's parameters loads by name in any order (it
loaded crosswise by order from a mapping or an .npz).  The rest are regression
oracles: float64 against torch autograd to 1e-10, exact parameter round trips, and
summary against torch's numel and closed forms."""
import math
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import load_torch_weights
from nnumba.errors import NonFiniteError, WeightsError

SQUARE = [{"type": "Linear", "in_features": 4, "out_features": 4}, {"type": "Tanh"},
          {"type": "Linear", "in_features": 4, "out_features": 4}]


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def _torch_of(torch, spec):
    nn, layers = torch.nn, []
    for item in spec:
        kw = {k: v for k, v in item.items() if k not in ("type", "seed", "resample")}
        layers.append(getattr(nn, item["type"])(**kw))
    return nn.Sequential(*layers)


def _reordered(torch):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 4))
    sd = net.state_dict()
    # the same tensors under the same (nnumba's own) names, in another dict order
    return net, {k: sd[k] for k in ["2.weight", "2.bias", "0.weight", "0.bias"]}


def _loads_right(net, source, torch):
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    model = nnumba.build(SQUARE, seed=0).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # by name: nothing to warn about
        load_torch_weights(model, source)
    np.testing.assert_allclose(model.predict(x), net(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6,
                               err_msg="'0.weight' was loaded into layer 2 and '2.weight' into "
                                       "layer 0, silently")


def test_reordered_index_names_mapping_not_loaded_crosswise():
    torch = _torch()
    net, rev = _reordered(torch)
    _loads_right(net, rev, torch)


def test_reordered_index_names_npz_not_loaded_crosswise(tmp_path):
    torch = _torch()
    net, rev = _reordered(torch)
    np.savez(tmp_path / "w.npz", **{k: v.numpy() for k, v in rev.items()})
    _loads_right(net, str(tmp_path / "w.npz"), torch)


def test_reordered_index_names_safetensors_loads_right(tmp_path):
    # regression: the safetensors route rebuilds the order from the names (passes now)
    torch = _torch()
    st = pytest.importorskip("safetensors.torch")
    net, rev = _reordered(torch)
    st.save_file(rev, str(tmp_path / "w.safetensors"))
    _loads_right(net, str(tmp_path / "w.safetensors"), torch)


# ---- regression oracles (pass now) ----------------------------------------------------

SPECS = [
    ([{"type": "Conv2d", "in_channels": 2, "out_channels": 3, "kernel_size": [3, 2],
       "stride": [2, 1], "padding": [1, 0]}, {"type": "ReLU"},
      {"type": "MaxPool2d", "kernel_size": 2}, {"type": "AdaptiveAvgPool2d", "output_size": [2, 3]},
      {"type": "Dropout", "p": 0.3}, {"type": "Flatten"},
      {"type": "Linear", "in_features": 18, "out_features": 5}, {"type": "Sigmoid"},
      {"type": "Linear", "in_features": 5, "out_features": 3, "bias": False}], (2, 11, 9)),
    ([{"type": "Conv1d", "in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2,
       "padding": 2}, {"type": "Tanh"}, {"type": "AvgPool1d", "kernel_size": 2},
      {"type": "Flatten"}, {"type": "Linear", "in_features": 12, "out_features": 2}], (2, 13)),
    ([{"type": "Conv3d", "in_channels": 1, "out_channels": 2, "kernel_size": [2, 3, 2],
       "stride": [1, 2, 1], "padding": [1, 0, 1]}, {"type": "Identity"}, {"type": "Flatten"},
      {"type": "Linear", "in_features": 210, "out_features": 2}], (1, 4, 7, 6)),
]


@pytest.mark.parametrize("spec,shape", SPECS)
def test_export_import_float64_agree_with_torch(spec, shape):
    torch = _torch()
    model = nnumba.build(spec, seed=1).astype(np.float64)
    net = _torch_of(torch, spec).double()
    net.load_state_dict({k: torch.from_numpy(np.array(p.value))
                         for k, (_, p) in zip(net.state_dict(), model.params(), strict=True)})
    x = np.random.default_rng(2).normal(size=(3,) + shape)
    for train in (False, True):
        model.train(train), net.train(train)
        model.input_grad = True
        model.zero_grad(), net.zero_grad()
        y = model.forward(x)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        mods = list(net.children())
        drop = [i for i, it in enumerate(spec) if it["type"] == "Dropout"]
        if train and drop:  # torch's Dropout cannot draw nnumba's mask: use nnumba's
            mask = torch.from_numpy(np.array(model.layers[drop[0]]._mask, dtype=np.float64))
            mods[drop[0]] = type("Mask", (torch.nn.Module,), {
                "forward": lambda self, z: z * mask.reshape(z.shape)})()
        yt = torch.nn.Sequential(*mods)(xt)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = np.random.default_rng(3).normal(size=y.shape)
        dx = model.backward(g)
        yt.backward(torch.from_numpy(g))
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        for (name, p), tp in zip(model.params(), net.parameters(), strict=True):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=name)
    # nnumba -> torch -> nnumba: the identity on parameters
    back = nnumba.build(spec, seed=9).astype(np.float64)
    load_torch_weights(back, net.state_dict())
    for (name, p), (_, q) in zip(model.params(), back.params(), strict=True):
        assert np.array_equal(p.value, q.value), name


@pytest.mark.parametrize("name", ["lenet", "mlp", "logreg"])
def test_registered_models_round_trip_through_files(name, tmp_path):
    torch = _torch()
    st = pytest.importorskip("safetensors.torch")
    model = nnumba.build(name, seed=0)
    net = _torch_of(torch, model.spec())
    assert sum(t.numel() for t in net.parameters()) == model.num_params()
    sd = {k: torch.from_numpy(np.array(p.value))
          for k, (_, p) in zip(net.state_dict(), model.params(), strict=True)}
    st.save_file(sd, str(tmp_path / "w.safetensors"))
    np.savez(tmp_path / "w.npz", **{k: v.numpy() for k, v in sd.items()})
    for path in ("w.safetensors", "w.npz"):
        twin = nnumba.build(name, seed=5)
        load_torch_weights(twin, str(tmp_path / path))
        for (n, p), (_, q) in zip(model.params(), twin.params(), strict=True):
            assert np.array_equal(p.value, q.value), (path, n)


def _base(torch):
    torch.manual_seed(0)
    return _torch_of(torch, SQUARE).state_dict()


@pytest.mark.parametrize("change,key", [
    (lambda d, t: d.pop("2.bias"), "2.bias"),
    (lambda d, t: d.__setitem__("9.weight", t.zeros(4, 4)), "9.weight"),
    (lambda d, t: d.__setitem__("2.weight", t.zeros(4, 5)), "2.weight"),
    (lambda d, t: d.__setitem__("2.weight", d["2.weight"].to(t.bfloat16)), "2.weight"),
    (lambda d, t: d.__setitem__("2.weight", d["2.weight"].to(t.int32)), "2.weight"),
    (lambda d, t: d.__setitem__("2.weight", t.empty(4, 4, device="meta")), "2.weight"),
    (lambda d, t: d.__setitem__("2.bias", t.tensor([1e300] * 4, dtype=t.float64)), "2.bias"),
])
def test_hostile_state_dicts_refused_naming_the_key(change, key):
    torch = _torch()
    d = dict(_base(torch))
    change(d, torch)
    model = nnumba.build(SQUARE, seed=0)
    before = np.array(model.flat_params)
    with pytest.raises(WeightsError, match=key):
        load_torch_weights(model, d)
    assert np.array_equal(model.flat_params, before)  # nothing partially loaded


def test_nan_refused_and_odd_layouts_accepted():
    torch = _torch()
    d = dict(_base(torch))
    d["2.bias"] = torch.tensor(float("nan")).expand(4)
    with pytest.raises(NonFiniteError, match="2.bias"):
        load_torch_weights(nnumba.build(SQUARE, seed=0), d)
    d = dict(_base(torch))
    want = {k: v.clone() for k, v in d.items()}
    d["0.weight"] = d["0.weight"].T.contiguous().T  # non-contiguous, right shape
    d["0.bias"] = torch.nn.Parameter(d["0.bias"].clone())  # requires grad
    d["2.weight"] = d["2.weight"].to(torch.float64)
    model = nnumba.build(SQUARE, seed=0)
    load_torch_weights(model, d)
    for (n, p), t in zip(model.params(), want.values(), strict=True):
        assert np.array_equal(p.value, t.numpy()), n


def _conv_out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


@pytest.mark.parametrize("seed", range(6))
def test_summary_against_torch_and_closed_forms(seed):
    torch = _torch()
    from nnumba.summary import summarize
    rng = np.random.default_rng(seed)
    dim = seed % 3 + 1
    c, co = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    sizes = [int(rng.integers(6, 14)) for _ in range(dim)]
    k = [int(rng.integers(1, 4)) for _ in range(dim)]
    s = [int(rng.integers(1, 4)) for _ in range(dim)]
    p = [int(rng.integers(0, ki // 2 + 1)) for ki in k]
    bias = bool(seed % 2)
    one = (lambda v: v[0]) if dim == 1 else (lambda v: v)
    hand = [co] + [_conv_out(n, *a) for n, *a in zip(sizes, k, s, p)]
    spec = [{"type": f"Conv{dim}d", "in_channels": c, "out_channels": co,
             "kernel_size": one(k), "stride": one(s), "padding": one(p), "bias": bias},
            {"type": "Flatten"},
            {"type": "Linear", "in_features": math.prod(hand), "out_features": 7}]
    rows = summarize(spec, input_shape=[c] + sizes, batch=2).rows
    net = _torch_of(torch, spec)
    assert tuple(rows[0].output_shape) == tuple(hand)
    y, shapes = torch.zeros([2, c] + sizes), []
    for mod in net:
        y = mod(y)
        shapes.append(tuple(y.shape[1:]))
    assert [tuple(r.output_shape) for r in rows] == shapes
    assert [r.params for r in rows] == [sum(t.numel() for t in m.parameters()) for m in net]
    out = math.prod(hand)  # a multiply-add is 2 FLOPs, a bias add 1; per sample x batch
    assert rows[0].forward_flops == 2 * (out * 2 * c * math.prod(k) + (out if bias else 0))
    assert rows[-1].forward_flops == 2 * (2 * math.prod(hand) * 7 + 7)
    model = nnumba.build(spec, seed=seed)
    assert model.num_params() == sum(t.numel() for t in net.parameters())
    # spec() -> build: the same function; astype float64 and back: exact
    x = rng.normal(size=(2, c, *sizes)).astype(np.float32)
    y1 = model.eval().forward(x).copy()
    twin = nnumba.build(model.spec(), seed=seed).eval()
    assert twin.spec() == model.spec() and np.array_equal(twin.forward(x), y1)
    y64 = model.astype(np.float64).forward(x.astype(np.float64))
    np.testing.assert_allclose(y64, y1, rtol=1e-5, atol=1e-6)
    assert np.array_equal(model.astype(np.float32).forward(x), y1)
