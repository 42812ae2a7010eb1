"""Peer oracle 21 (randomized differential testing against torch 2.13): a safetensors
file put a module's own tensors other than weight and bias in alphabetical order, which
swapped two of one shape silently and refused LowRankLinear's u, v, bias; and a compact
copy of the round's random-model fuzzer, against torch's forward and autograd."""
import os

import numpy as np
import pytest

import nnumba


def _torch_and_safetensors():
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    return torch, st


class _Affine(nnumba.Layer):
    """y = x * scale + offset, per feature; parameters declared scale, then offset
    (the order a torch module registering them the same way has in its state_dict)."""

    def __init__(self, n):
        super().__init__()
        self.scale = self.add_param("scale", (n,))
        self.offset = self.add_param("offset", (n,))

    def reset_parameters(self, rng):
        self.scale.value[...] = 1
        self.offset.value[...] = 0

    def output_shape(self, input_shape):
        return input_shape

    def _forward(self, x):
        return x * self.scale.value + self.offset.value


def test_safetensors_does_not_swap_a_modules_same_shaped_own_parameters(tmp_path):
    """A module's own parameters 'scale' and 'offset' (same shape) are loaded from a
    safetensors file into each other's places: the sorted names put 'offset' first and
    _sort_key (torch_import.py:145) keeps that alphabetical order for every leaf other
    than weight/bias, silently. The .npz of the same state_dict loads right; torch's
    own forward is the referee."""
    torch, st = _torch_and_safetensors()
    from nnumba.torch_import import load_torch_weights

    class TAffine(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.full((n,), 2.0, dtype=torch.float64))
            self.offset = torch.nn.Parameter(torch.full((n,), 5.0, dtype=torch.float64))

        def forward(self, x):
            return x * self.scale + self.offset

    t = torch.nn.Sequential(TAffine(3))
    x = np.random.default_rng(0).normal(size=(4, 3))
    ref = t(torch.tensor(x)).detach().numpy()
    npz, sft = tmp_path / "w.npz", tmp_path / "w.safetensors"
    np.savez(npz, **{k: v.detach().numpy() for k, v in t.state_dict().items()})
    st.save_file(t.state_dict(), str(sft))
    for path in (npz, sft):
        m = nnumba.Sequential(_Affine(3)).astype(np.float64)
        try:
            load_torch_weights(m, path)
        except nnumba.WeightsError:
            continue  # refusing an ambiguous order is acceptable; loading it swapped is not
        np.testing.assert_allclose(m.forward(x), ref, rtol=1e-14, err_msg=os.fspath(path))


def test_safetensors_loads_low_rank_linear_as_npz_does(tmp_path):
    """LowRankLinear's parameters are u, v, bias (the registration order of the torch
    module below, and its state_dict's). The .npz loads; the safetensors file of the
    same state_dict is refused ("torch tensor #0 '0.bias' has shape (3,), nnumba
    parameter #0 '0.u'"), because the rebuilt order puts bias before u and v
    (torch_import.py:145), though exactly one order of the module's leaves fits."""
    torch, st = _torch_and_safetensors()
    from nnumba.torch_import import load_torch_weights
    try:
        LowRankLinear = nnumba.get_layer("LowRankLinear")
    except nnumba.RegistryError:
        pytest.skip("the nnumba-extra-activations plugin is not installed")

    class TLowRank(torch.nn.Module):
        def __init__(self, i, o, r):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.u = torch.nn.Parameter(torch.randn(r, i, generator=g, dtype=torch.float64))
            self.v = torch.nn.Parameter(torch.randn(o, r, generator=g, dtype=torch.float64))
            self.bias = torch.nn.Parameter(torch.randn(o, generator=g, dtype=torch.float64))

        def forward(self, x):
            F = torch.nn.functional
            return F.linear(F.linear(x, self.u), self.v, self.bias)

    t = torch.nn.Sequential(TLowRank(4, 3, 2))
    x = np.random.default_rng(1).normal(size=(5, 4))
    ref = t(torch.tensor(x)).detach().numpy()
    npz, sft = tmp_path / "w.npz", tmp_path / "w.safetensors"
    np.savez(npz, **{k: v.detach().numpy() for k, v in t.state_dict().items()})
    st.save_file(t.state_dict(), str(sft))
    for path in (npz, sft):
        m = nnumba.Sequential(LowRankLinear(4, 3, 2)).astype(np.float64)
        load_torch_weights(m, path)
        np.testing.assert_allclose(m.forward(x), ref, rtol=1e-13, err_msg=os.fspath(path))


# ---- regression oracle: random models, forward / loss / every gradient against torch ----

def _spec(rng):
    acts = [("ReLU", {}), ("Tanh", {}), ("Sigmoid", {}), ("Identity", {})]
    fam = rng.integers(3)
    if fam == 0:
        shape, cur, spec = (int(rng.integers(1, 8)),), None, []
        cur = shape[0]
    else:
        n = int(fam)
        shape = (int(rng.integers(1, 3)),) + tuple(int(rng.integers(5, 10)) for _ in range(n))
        D = int(rng.integers(1, 4))
        k = int(rng.integers(1, 4))
        spec = [(f"Conv{n}d", {"in_channels": shape[0], "out_channels": D, "kernel_size": k,
                               "stride": int(rng.integers(1, 3)), "padding": int(rng.integers(0, 2))}),
                acts[rng.integers(4)],
                (f"MaxPool{n}d" if rng.random() < 0.5 else f"AvgPool{n}d", {"kernel_size": 2}),
                ("Flatten", {})]
        cur = None
    return spec, shape, cur, acts


def _torch_forward(torch, spec, x, P):
    F = torch.nn.functional
    P = iter(P)
    for name, kw in spec:
        if name == "Linear":
            x = F.linear(x, next(P), next(P))
        elif name.startswith("Conv"):
            f = F.conv1d if name == "Conv1d" else F.conv2d
            x = f(x, next(P), next(P), stride=kw["stride"], padding=kw["padding"])
        elif name.startswith("MaxPool"):
            x = (F.max_pool1d if name.endswith("1d") else F.max_pool2d)(x, kw["kernel_size"])
        elif name.startswith("AvgPool"):
            x = (F.avg_pool1d if name.endswith("1d") else F.avg_pool2d)(x, kw["kernel_size"])
        elif name == "Flatten":
            x = x.flatten(1)
        else:
            x = {"ReLU": F.relu, "Tanh": torch.tanh, "Sigmoid": torch.sigmoid,
                 "Identity": lambda v: v}[name](x)
    return x


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_random_models_match_torch_forward_loss_and_gradients(dtype, tol):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    from nnumba.losses import MSE, CrossEntropy
    for seed in range(25):
        rng = np.random.default_rng(seed)
        spec, shape, cur, acts = _spec(rng)
        if cur is None:
            m0 = nnumba.Sequential(*[nnumba.get_layer(n)(**kw) for n, kw in spec])
            cur = int(np.prod(m0.output_shape(shape)))
        K = int(rng.integers(1, 4))
        spec = spec + [("Linear", {"in_features": cur, "out_features": 4}), acts[rng.integers(4)],
                       ("Linear", {"in_features": 4, "out_features": K})]
        m = nnumba.Sequential(*[nnumba.get_layer(n)(**kw) for n, kw in spec], seed=seed).astype(dtype)
        m.input_grad = True
        N = int(rng.choice([1, 2, 5]))
        x = rng.normal(size=(N,) + shape).astype(dtype)
        ce = rng.random() < 0.5
        red = "mean" if rng.random() < 0.5 else "sum"
        t = rng.integers(0, K, N) if ce else rng.normal(size=(N, K)).astype(dtype)
        loss = CrossEntropy(reduction=red) if ce else MSE(reduction=red)
        y = m.forward(x)
        value = loss.forward(y, t)
        dx = m.backward(loss.backward())
        P = [torch.tensor(np.asarray(p.value, np.float64), requires_grad=True) for _, p in m.params()]
        xt = torch.tensor(x.astype(np.float64), requires_grad=True)
        z = _torch_forward(torch, spec, xt, P)
        lt = F.cross_entropy(z, torch.tensor(t), reduction=red) if ce else \
            F.mse_loss(z, torch.tensor(t.astype(np.float64)), reduction=red)
        lt.backward()
        G = max([float(q.grad.abs().max()) for q in P] + [float(xt.grad.abs().max()), 1e-300])

        def err(a, b, scale=None):
            b = np.asarray(b, np.float64)
            return float(np.max(np.abs(np.asarray(a, np.float64) - b))) / (scale or max(np.abs(b).max(), 1e-300))
        assert err(y, z.detach().numpy()) < tol, (seed, spec)
        assert abs(value - lt.item()) <= tol * max(abs(lt.item()), 1e-300), (seed, spec)
        assert err(dx, xt.grad.numpy(), G) < tol, (seed, spec)
        for (name, p), q in zip(m.params(), P):
            assert err(p.grad, q.grad.numpy(), G) < tol, (seed, name, spec)


def test_safetensors_refuses_same_shaped_tensors_named_unlike_the_layers(tmp_path):
    """Torch names 'alpha' and 'beta' for the layer's 'scale' and 'offset': no name tells
    which is which and both orders fit by shape, so the file is refused (the .npz, which
    keeps the module's order, loads)."""
    torch, st = _torch_and_safetensors()
    from nnumba.torch_import import load_torch_weights
    t = torch.nn.Module()
    t.alpha = torch.nn.Parameter(torch.full((3,), 2.0, dtype=torch.float64))
    t.beta = torch.nn.Parameter(torch.full((3,), 5.0, dtype=torch.float64))
    state = {f"0.{k}": v for k, v in t.state_dict().items()}
    sft, npz = tmp_path / "w.safetensors", tmp_path / "w.npz"
    st.save_file(state, str(sft))
    np.savez(npz, **{k: v.numpy() for k, v in state.items()})
    m = nnumba.Sequential(_Affine(3)).astype(np.float64)
    with pytest.raises(nnumba.WeightsError, match="fit the model in 2 orders"):
        load_torch_weights(m, sft)
    load_torch_weights(m, npz)
    np.testing.assert_array_equal(m.forward(np.full((1, 3), 2.0)), [[9.0, 9.0, 9.0]])  # 2*2 + 5
