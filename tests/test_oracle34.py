"""Randomized regression oracle (oracle 34): nnumba's convolution and pooling layers at
the edges of their parameter space against PyTorch autograd.

Seeded; float64 compared at 1e-10 relative (max|diff| / max|ref|), float32 elementwise
within 2 eps32 K sum|terms| (K: the longest sum), model.predict (eval, uneven
batches) against the same reference.  Ties in max pooling are integer inputs: the
gradient must go where torch sends it (first in row-major order).
Run with NUMBA_NUM_THREADS=1."""
import json

import numpy as np
import pytest

import nnumba
from nnumba.errors import NnumbaError, NonFiniteError, SpecError

torch = pytest.importorskip("torch")
nn = torch.nn
EPS32 = float(np.finfo(np.float32).eps)


def _ri(rng, a, b):
    return int(rng.integers(a, b + 1))


def _torch_layer(item):
    t = item["type"]
    a = {k: tuple(v) if isinstance(v, list) else v for k, v in item.items() if k != "type"}
    if t.startswith("ReLUMaxPool"):
        return nn.Sequential(nn.ReLU(), getattr(nn, t[4:])(**a))
    return getattr(nn, t)(**a)


def _twin(spec, weights):
    tm = nn.Sequential(*[_torch_layer(s) for s in spec]).double()
    with torch.no_grad():
        for name, p in tm.named_parameters():
            p.copy_(torch.from_numpy(weights[name]))
    return tm


def _grads(tm, x, g):
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y = tm(xt)
    y.backward(torch.from_numpy(g.copy()))
    return (y.detach().numpy(), xt.grad.numpy(),
            {n: p.grad.numpy() for n, p in tm.named_parameters()})


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)) if a.size else 0.0


def _weights(model):
    return {f"{i}.{n}": np.asarray(p.value, np.float64)
            for i, layer in enumerate(model.layers) for n, p in layer.params().items()}


# ---- configurations at the edges ------------------------------------------------

def _conv2d(rng):
    C, D = _ri(rng, 1, 3), _ri(rng, 1, 4)
    k, p, s = [_ri(rng, 1, 5), _ri(rng, 1, 5)], [_ri(rng, 0, 5), _ri(rng, 0, 5)], \
        [_ri(rng, 1, 8), _ri(rng, 1, 8)]                       # padding >= kernel, stride > input
    hw = [_ri(rng, max(1, kk - 2 * pp), max(1, kk - 2 * pp) + 5) for kk, pp in zip(k, p)]
    if rng.random() < .2:
        hw, p = list(k), [0, 0]                                # kernel == input
    return [{"type": "Conv2d", "in_channels": C, "out_channels": D, "kernel_size": k,
             "stride": s, "padding": p, "bias": bool(rng.random() < .6)}], (C, *hw)


def _conv1d(rng):
    C, D, k, p, s = _ri(rng, 1, 3), _ri(rng, 1, 4), _ri(rng, 1, 6), _ri(rng, 0, 6), _ri(rng, 1, 9)
    L = _ri(rng, max(1, k - 2 * p), max(1, k - 2 * p) + 8)
    return [{"type": "Conv1d", "in_channels": C, "out_channels": D, "kernel_size": k,
             "stride": s, "padding": p, "bias": bool(rng.random() < .6)}], (C, L)


def _conv3d(rng):
    C, D = _ri(rng, 1, 2), _ri(rng, 1, 3)
    k, p, s = ([_ri(rng, 1, 3) for _ in range(3)], [_ri(rng, 0, 3) for _ in range(3)],
               [_ri(rng, 1, 5) for _ in range(3)])
    size = [_ri(rng, max(1, kk - 2 * pp), max(1, kk - 2 * pp) + 3) for kk, pp in zip(k, p)]
    return [{"type": "Conv3d", "in_channels": C, "out_channels": D, "kernel_size": k,
             "stride": s, "padding": p, "bias": bool(rng.random() < .6)}], (C, *size)


def _wide_conv(rng):  # K = C kh kw > 128: the GEMM and Winograd paths, padded
    C, k = int(rng.choice([16, 20])), int(rng.choice([3, 3, 4]))
    p = [_ri(rng, 0, 4), _ri(rng, 0, 4)]
    s = [1, 1] if rng.random() < .6 else [_ri(rng, 1, 3), _ri(rng, 1, 3)]
    return [{"type": "Conv2d", "in_channels": C, "out_channels": _ri(rng, 1, 5),
             "kernel_size": k, "stride": s, "padding": p, "bias": bool(rng.random() < .6)}], \
        (C, _ri(rng, max(1, k - 2 * p[0]), 10), _ri(rng, max(1, k - 2 * p[1]), 10))


def _pool2d(rng):
    k = [_ri(rng, 1, 5), _ri(rng, 1, 5)]
    spec = {"type": str(rng.choice(["MaxPool2d", "AvgPool2d", "ReLUMaxPool2d"])), "kernel_size": k}
    if rng.random() < .7:
        spec["stride"] = [_ri(rng, 1, 7), _ri(rng, 1, 7)]
    hw = list(k) if rng.random() < .2 else [_ri(rng, k[0], k[0] + 6), _ri(rng, k[1], k[1] + 6)]
    return [spec], (_ri(rng, 1, 3), *hw)


def _pool1d(rng):
    k = _ri(rng, 1, 6)
    spec = {"type": str(rng.choice(["MaxPool1d", "AvgPool1d", "ReLUMaxPool1d"])), "kernel_size": k}
    if rng.random() < .7:
        spec["stride"] = _ri(rng, 1, 8)
    return [spec], (_ri(rng, 1, 3), _ri(rng, k, k + 9))


def _adaptive(rng):
    return [{"type": "AdaptiveAvgPool2d", "output_size": [_ri(rng, 1, 7), _ri(rng, 1, 7)]}], \
        (_ri(rng, 1, 3), _ri(rng, 1, 9), _ri(rng, 1, 9))


def _conv_relu_pool(rng):  # fused into Conv2dReLUMaxPool2d where D % 4 == 0, pool w == stride w
    C, D, k, p = _ri(rng, 1, 3), int(rng.choice([4, 8, 3])), _ri(rng, 1, 5), _ri(rng, 0, 2)
    pk = [_ri(rng, 1, 3), int(rng.choice([2, 3]))]
    ps = [_ri(rng, 1, 4), pk[1]] if rng.random() < .7 else [_ri(rng, 1, 4), _ri(rng, 1, 4)]
    return [{"type": "Conv2d", "in_channels": C, "out_channels": D, "kernel_size": k,
             "padding": p, "bias": bool(rng.random() < .6)}, {"type": "ReLU"},
            {"type": "MaxPool2d", "kernel_size": pk, "stride": ps}], \
        (C, _ri(rng, k + pk[0], k + pk[0] + 6), _ri(rng, k + pk[1], k + pk[1] + 6))


GENERATORS = [_conv2d, _conv1d, _conv3d, _wide_conv, _pool2d, _pool1d, _adaptive,
              _conv_relu_pool]
CASES = 12  # per generator


def _cases(gen):
    rng = np.random.default_rng(3400 + GENERATORS.index(gen))
    for i in range(CASES):
        spec, shape = gen(rng)
        N = _ri(rng, 1, 3)
        if "Pool" in spec[-1]["type"] and rng.random() < .5:   # ties
            x = rng.integers(-2, 3, size=(N,) + shape).astype(np.float64)
        else:
            x = rng.standard_normal((N,) + shape)
        yield i, spec, x


@pytest.mark.parametrize("gen", GENERATORS, ids=lambda g: g.__name__[1:])
def test_float64_forward_gradients_and_predict_match_torch(gen):
    for i, spec, x in _cases(gen):
        tag = f"case {i}: {json.dumps(spec)} x{x.shape}"
        model = nnumba.build(spec, seed=i).astype(np.float64)
        model.input_grad = True
        tm = _twin(spec, _weights(model))
        y = np.array(model.forward(x.copy()))
        g = np.random.default_rng(i).standard_normal(y.shape)
        yt, dxt, gt = _grads(tm, x, g)
        assert _rel(y, yt) <= 1e-10, tag
        model.zero_grad()
        dx = model.backward(g.copy())
        assert _rel(dx, dxt) <= 1e-10, tag
        for name, w in _weights(model).items():
            layer = model.layers[int(name.split(".")[0])]
            grad = layer.params()[name.split(".")[1]].grad
            assert _rel(grad, gt[name]) <= 1e-10, f"{tag} d{name}"
        assert _rel(model.predict(x.copy(), batch_size=max(1, len(x) - 1)), yt) <= 1e-10, tag


def _longest_sum(spec, y_shape):
    k = spec[0].get("kernel_size", 1)
    taps = int(np.prod(k)) * spec[0].get("in_channels", 1) * (1 + 2 * ("Conv1d" == spec[0]["type"]))
    return max(taps, int(np.prod(k)) * spec[0].get("out_channels", 1)) + \
        y_shape[0] * int(np.prod(y_shape[2:])) + 4


@pytest.mark.parametrize("gen", [g for g in GENERATORS if g is not _conv_relu_pool],
                         ids=lambda g: g.__name__[1:])
def test_float32_within_the_rounding_bound_of_the_float64_reference(gen):
    for i, spec, x in _cases(gen):
        tag = f"case {i}: {json.dumps(spec)} x{x.shape}"
        model = nnumba.build(spec, seed=i).astype(np.float32)
        model.input_grad = True
        x32 = x.astype(np.float32)
        y = np.array(model.forward(x32.copy()))
        g32 = np.random.default_rng(i).standard_normal(y.shape).astype(np.float32)
        w = _weights(model)
        yr, dxr, gr = _grads(_twin(spec, w), x32.astype(np.float64), g32.astype(np.float64))
        # sum |terms|: the same network on |x|, |w|, |g| (max pools: x's own argmax)
        ya, dxa, ga = _grads(_twin(spec, {n: np.abs(v) for n, v in w.items()}),
                             np.abs(x32.astype(np.float64)), np.abs(g32.astype(np.float64)))
        if "Max" in spec[-1]["type"]:
            dxa = _grads(_twin(spec, w), x32.astype(np.float64), np.abs(g32.astype(np.float64)))[1]
        c = 2 * EPS32 * _longest_sum(spec, y.shape)
        model.zero_grad()
        dx = model.backward(g32.copy())
        assert np.all(np.abs(y - yr) <= c * ya + 1e-37), tag
        assert np.all(np.abs(dx - dxr) <= c * dxa + 1e-37), tag
        for name in w:
            layer = model.layers[int(name.split(".")[0])]
            grad = layer.params()[name.split(".")[1]].grad
            assert np.all(np.abs(grad - gr[name]) <= c * ga[name] + 1e-37), f"{tag} d{name}"
        assert np.all(np.abs(model.predict(x32, batch_size=1) - yr) <= c * ya + 1e-37), tag


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer", ["MaxPool2d", "ReLUMaxPool2d", "MaxPool1d"])
def test_max_pool_of_extreme_and_tied_values_matches_torch(layer, dtype):
    big = np.finfo(dtype).max
    one_d = layer == "MaxPool1d"
    k, s = (3, 2) if one_d else ([2, 3], [1, 2])
    model = nnumba.build([{"type": layer, "kernel_size": k, "stride": s}]).astype(dtype)
    model.input_grad = True
    tm = _twin([{"type": layer, "kernel_size": k, "stride": s}], {})
    for value in (-big, big, -0.0, np.finfo(dtype).tiny / 4):
        x = np.full((1, 2, 6) if one_d else (1, 2, 3, 4), value, dtype)
        y = np.array(model.forward(x))
        g = np.arange(1, y.size + 1, dtype=dtype).reshape(y.shape)
        dx = model.backward(g)
        yt, dxt, _ = _grads(tm, x.astype(np.float64), g.astype(np.float64))
        assert np.array_equal(y, yt.astype(dtype)) and np.array_equal(dx, dxt.astype(dtype)), value


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("spec", [{"type": "MaxPool2d", "kernel_size": 2},
                                  {"type": "AvgPool2d", "kernel_size": 2},
                                  {"type": "ReLUMaxPool2d", "kernel_size": 2},
                                  {"type": "AdaptiveAvgPool2d", "output_size": 1},
                                  {"type": "Conv2d", "in_channels": 1, "out_channels": 1,
                                   "kernel_size": 2}], ids=lambda s: s["type"])
def test_non_finite_input_is_refused_in_forward_and_predict(spec, value):
    model = nnumba.build([spec]).astype(np.float64)
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 1, 0] = value
    with pytest.raises(NonFiniteError):
        model.forward(x)
    with pytest.raises(NonFiniteError):
        model.predict(x)


@pytest.mark.parametrize("item", [
    {"type": "MaxPool2d", "kernel_size": 2, "padding": 1},
    {"type": "MaxPool2d", "kernel_size": 2, "ceil_mode": True},
    {"type": "MaxPool2d", "kernel_size": 2, "dilation": 2},
    {"type": "AvgPool2d", "kernel_size": 2, "count_include_pad": False},
    {"type": "AvgPool1d", "kernel_size": 2, "ceil_mode": True},
    {"type": "Conv2d", "in_channels": 2, "out_channels": 2, "kernel_size": 3, "groups": 2},
    {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "dilation": 2},
    {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": "same"},
    {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3,
     "padding_mode": "reflect"},
    {"type": "AdaptiveAvgPool2d", "output_size": [None, 3]},
    {"type": "MaxPool3d", "kernel_size": 2},
], ids=lambda d: "-".join(f"{k}" for k in d if k != "type") + f"-{d['type']}")
def test_options_torch_takes_and_nnumba_does_not_are_a_spec_error(item):
    with pytest.raises(SpecError):
        nnumba.build([item])


@pytest.mark.parametrize("spec, shape", [
    ({"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3}, (1, 1, 2, 5)),
    ({"type": "MaxPool2d", "kernel_size": 3}, (1, 1, 2, 5)),
    ({"type": "AdaptiveAvgPool2d", "output_size": 3}, (2, 1, 0, 4)),
    ({"type": "Conv1d", "in_channels": 1, "out_channels": 1, "kernel_size": 2}, (1, 4)),
])
def test_geometry_torch_refuses_or_unbatched_is_a_clear_nnumba_error(spec, shape):
    with pytest.raises(NnumbaError):
        nnumba.build([spec]).astype(np.float64).forward(np.ones(shape))


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_inputs_holding_infinity_are_refused_as_the_readme_says(value):
    """-inf as a mask before a max-pool (torch takes it) is refused as NaN is; the
    README said only 'NaN inputs'."""
    from pathlib import Path
    m = nnumba.build([{"type": "MaxPool2d", "kernel_size": 2}]).astype(np.float64)
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 1] = value
    for run in (m.predict, m.forward):
        with pytest.raises(NonFiniteError, match="NaN or infinity"):
            run(x)
    readme = Path(__file__).resolve().parents[1] / "README.md"
    assert "inputs holding NaN or infinity" in " ".join(readme.read_text().split())
