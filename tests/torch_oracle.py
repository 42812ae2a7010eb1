"""What the peer-oracle rounds (test_peer_oracle.py, test_peer_oracle12.py,
test_peer_oracle13.py) share: tolerances by dtype, the plumbing to their torch twins
and the layer check.  Imported after their ``pytest.importorskip("torch")`` (pytest
puts tests/ on the path)."""
import numpy as np
import torch


def tol(dtype, k=1):
    """Sums in another order: a few float32 ulps of the largest term, or float64's."""
    return dict(rtol=2e-4 * k, atol=2e-5 * k) if dtype == np.float32 else \
        dict(rtol=1e-10 * k, atol=1e-12 * k)


def tdtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def from_spec(spec, dtype):
    """torch.nn.Sequential of an nnumba spec of built-in layers, parameters in its order."""
    nn, layers = torch.nn, []
    for item in spec:
        kind, args = item["type"], {k: v for k, v in item.items() if k != "type"}
        layers.append(getattr(nn, kind)(**args))
    return nn.Sequential(*layers).to(tdtype(dtype))


def copy_params(model, net):
    """The nnumba model's parameters into the torch module, in order."""
    with torch.no_grad():
        for (_, p), t in zip(model.params(), net.parameters(), strict=True):
            t.copy_(torch.from_numpy(np.array(p.value)))


def check_layer(layer, tlayer, x, dtype, seed=0, k=1):
    """Forward, input gradient and parameter gradients of one layer against torch."""
    layer, tlayer = layer.astype(dtype), tlayer.to(tdtype(dtype))
    names = list(layer.params())
    with torch.no_grad():
        for name in names:
            getattr(tlayer, name).copy_(torch.from_numpy(layer.params()[name].value.copy()))
    xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    yt = tlayer(xt)
    np.testing.assert_allclose(layer.forward(x), yt.detach().numpy(), **tol(dtype, k),
                               err_msg="forward")
    g = np.random.default_rng(seed).normal(size=tuple(yt.shape)).astype(dtype)
    yt.backward(torch.from_numpy(g))
    layer.zero_grad()
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), **tol(dtype, k), err_msg="dx")
    for name in names:
        np.testing.assert_allclose(layer.params()[name].grad, getattr(tlayer, name).grad.numpy(),
                                   **tol(dtype, k), err_msg=name)


def loss_pair(loss, torch_loss, y_hat, y, dtype, value_rtol=(1e-6, 1e-13)):
    """The loss's value (within ``value_rtol``: float32's, float64's) and gradient
    against torch's on the same arrays."""
    value = loss.forward(y_hat, y)
    grad = loss.backward()
    yt = torch.from_numpy(np.ascontiguousarray(y_hat)).requires_grad_(True)
    ref = torch_loss(yt, torch.from_numpy(np.ascontiguousarray(y)))
    ref.backward()
    np.testing.assert_allclose(value, ref.item(), rtol=value_rtol[dtype != np.float32])
    np.testing.assert_allclose(grad, yt.grad.numpy(), **tol(dtype))
