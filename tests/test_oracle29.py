"""Peer oracle 29: every built-in layer and loss against torch autograd, closed forms
and the CUDA simulator, at unusual geometry (stride past the kernel, 1 x 1 maps,
batch 1, channels not in fours, adaptive bins that do not divide).  No mismatch was
found at 1417e8e: these guard what holds.  Float64 tolerance: 1e-11 of the largest
|torch value| (sums in another order, a few ulps times the fan-in); float32: 2e-5."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnumba

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
F = torch.nn.functional


def _torch_net(spec):
    mods = []
    for item in spec:
        kind, args = item["type"], {k: v for k, v in item.items() if k != "type"}
        if kind.startswith("ReLUMaxPool"):
            mods.append(torch.nn.Sequential(torch.nn.ReLU(), getattr(torch.nn, kind[4:])(**args)))
        else:
            mods.append(getattr(torch.nn, kind)(**args))
    return torch.nn.Sequential(*mods).double()


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _check(spec, x, input_grad=True, seed=0, tol=1e-11):
    model = nnumba.build(spec, seed=seed).astype(np.float64)
    model.input_grad = input_grad
    net = _torch_net(spec)
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            for name, p in layer.params().items():
                getattr(net[i], name).copy_(torch.from_numpy(np.array(p.value)))
    y = np.array(model.forward(x))
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = net(xt)
    assert _rel(y, yt.detach().numpy()) <= tol
    g = np.random.default_rng(seed + 1).standard_normal(y.shape)
    model.zero_grad()
    dx = model.backward(g.copy())
    yt.backward(torch.from_numpy(g))
    if input_grad:
        assert _rel(dx, xt.grad.numpy()) <= tol
    for i, layer in enumerate(model.layers):
        for name, p in layer.params().items():
            assert _rel(p.grad, getattr(net[i], name).grad.numpy()) <= tol, (i, name)
    return model, y


def _conv(C, D, k, s=1, p=0, bias=True, kind="Conv2d"):
    return {"type": kind, "in_channels": C, "out_channels": D, "kernel_size": k, "stride": s,
            "padding": p, "bias": bias}


ODD_GEOMETRY = [
    ([_conv(3, 5, [3, 2], [4, 3], [1, 1])], (1, 3, 6, 7)),            # stride > kernel
    ([_conv(5, 3, [1, 7], [1, 9], [0, 3], False)], (1, 5, 1, 1)),      # 1x1 map
    ([_conv(2, 3, 3, 5, 1, kind="Conv1d")], (2, 2, 11)),
    ([_conv(2, 3, [2, 1, 3], [1, 3, 2], [1, 0, 1], kind="Conv3d")], (1, 2, 3, 4, 5)),
    ([{"type": "MaxPool2d", "kernel_size": [2, 3], "stride": [3, 1]}], (1, 3, 7, 5)),
    ([{"type": "AvgPool2d", "kernel_size": [2, 3], "stride": [3, 4]}], (2, 1, 7, 9)),
    ([{"type": "ReLUMaxPool2d", "kernel_size": [3, 2], "stride": [1, 2]}], (2, 3, 7, 6)),
    ([{"type": "ReLUMaxPool1d", "kernel_size": 3, "stride": 2}], (2, 3, 8)),
    ([{"type": "AvgPool1d", "kernel_size": 2, "stride": 3}], (1, 2, 9)),
    ([{"type": "AdaptiveAvgPool2d", "output_size": [4, 7]}], (2, 3, 5, 3)),   # larger than input
    ([{"type": "AdaptiveAvgPool2d", "output_size": [6, 5]}], (1, 2, 13, 11)),  # bins that overlap
    ([{"type": "Linear", "in_features": 5, "out_features": 3}, {"type": "ReLU"},
      {"type": "Linear", "in_features": 3, "out_features": 2, "bias": False}, {"type": "Tanh"},
      {"type": "Linear", "in_features": 2, "out_features": 2}, {"type": "Sigmoid"}], (1, 5)),
]


@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("spec, shape", ODD_GEOMETRY)
def test_layers_with_odd_geometry_match_torch_in_float64(spec, shape, input_grad):
    x = np.random.default_rng(3).standard_normal(shape)
    _check(spec, x, input_grad)


@pytest.mark.parametrize("pool", [([3, 2], [1, 2]), ([2, 3], [3, 3]), ([1, 2], [2, 2])])
@pytest.mark.parametrize("input_grad", [True, False])
def test_fused_conv_relu_maxpool_equals_the_layers_apart_and_torch(pool, input_grad):
    (pk, ps) = pool
    conv = _conv(3, 8, [3, 2], 1, [1, 0])
    fused_spec = [conv, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": pk, "stride": ps}]
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 7))
    model, y = _check(fused_spec, x, input_grad)
    assert any(type(s).__name__ == "Conv2dReLUMaxPool2d" for s in model.steps)
    apart = nnumba.build([conv, {"type": "Identity"}, {"type": "ReLU"}, {"type": "Identity"},
                          fused_spec[2]], seed=0).astype(np.float64)
    for (_, a), (_, b) in zip(apart.params(), model.params()):
        a.value[...] = b.value
    assert _rel(np.array(apart.forward(x)), y) <= 1e-13


def test_gradients_accumulate_over_batches_of_different_sizes_in_a_fused_step():
    spec = [_conv(2, 4, 3), {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": [3, 2], "stride": [2, 2]}]
    model = nnumba.build(spec, seed=0).astype(np.float64)
    net = _torch_net(spec)
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(model.layers[0].weight.value))
        net[0].bias.copy_(torch.from_numpy(model.layers[0].bias.value))
    rng = np.random.default_rng(0)
    model.zero_grad()
    for n in (1, 3, 2):
        x = rng.standard_normal((n, 2, 9, 8))
        y = np.array(model.forward(x))
        g = rng.standard_normal(y.shape)
        model.backward(g)
        net(torch.from_numpy(x)).backward(torch.from_numpy(g))
    assert _rel(model.layers[0].weight.grad, net[0].weight.grad.numpy()) <= 1e-11
    assert _rel(model.layers[0].bias.grad, net[0].bias.grad.numpy()) <= 1e-11


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_at_extreme_logits_one_class_and_edge_labels(dtype, reduction):
    from nnumba.losses import CrossEntropy
    cases = [(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [0.5, 0.25, -0.5]]), np.array([1, 0, 2])),
             (np.array([[3.0], [-1e4]]), np.array([0, 0])),                  # one class
             (np.zeros((2, 4)), np.array([3, 0]))]
    for z, labels in cases:
        z = z.astype(dtype)
        loss = CrossEntropy(reduction)
        value = loss.forward(z, labels)
        grad = np.array(loss.backward())
        zt = torch.from_numpy(z.copy()).requires_grad_(True)
        tv = F.cross_entropy(zt, torch.from_numpy(labels), reduction=reduction)
        tv.backward()
        assert value == pytest.approx(float(tv.detach()), rel=1e-6 if dtype == np.float32 else 1e-14)
        assert _rel(grad, zt.grad.numpy()) <= (1e-6 if dtype == np.float32 else 1e-14)


def test_logistic_loss_beyond_torchs_softplus_threshold_matches_the_closed_form():
    """torch's softplus returns x for x > 20 (threshold 20), so it is not the reference
    there: log1p(exp(-t)) and 1/(1+e^t) are."""
    from nnumba.losses import Logistic
    t = np.array([-30.0, -21.0, -5.0, 0.0, 5.0, 30.0, 700.0])
    loss = Logistic("sum")
    value = loss.forward(t, np.ones_like(t))
    grad = np.array(loss.backward())
    exact = np.where(t < 0, -t + np.log1p(np.exp(t)), np.log1p(np.exp(-t)))
    assert value == pytest.approx(exact.sum(), rel=1e-15)
    np.testing.assert_allclose(grad, -1 / (1 + np.exp(t)), rtol=1e-14)


def test_cuda_simulator_matches_the_cpu_on_small_cases(tmp_path):
    pytest.importorskip("numba_cuda")
    spec = [_conv(2, 4, 3, 1, 1), {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": [3, 2], "stride": [1, 2]},
            {"type": "Flatten"}, {"type": "Linear", "in_features": 4 * 4 * 3, "out_features": 3}]
    script = textwrap.dedent(f"""
        import numpy as np, nnumba
        from nnumba.device import to_device, to_host
        m = nnumba.build({spec!r}, seed=0).astype(np.float64); m.input_grad = True; m.to("cuda")
        rng = np.random.default_rng(0); x = rng.standard_normal((2, 2, 6, 6))
        y = to_host(m.forward(to_device(x, "cuda"))); g = rng.standard_normal(y.shape)
        m.zero_grad(); dx = to_host(m.backward(to_device(g, "cuda")))
        np.savez({str(tmp_path / 'sim.npz')!r}, y=y, dx=dx, **{{n: to_host(p.grad) for n, p in m.params()}})
    """)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    sim = np.load(tmp_path / "sim.npz")
    m = nnumba.build(spec, seed=0).astype(np.float64); m.input_grad = True
    rng = np.random.default_rng(0); x = rng.standard_normal((2, 2, 6, 6))
    y = np.array(m.forward(x)); g = rng.standard_normal(y.shape)
    m.zero_grad(); dx = np.array(m.backward(g))
    assert _rel(sim["y"], y) <= 1e-12 and _rel(sim["dx"], dx) <= 1e-12
    for name, p in m.params():
        assert _rel(sim[name], p.grad) <= 1e-12, name
