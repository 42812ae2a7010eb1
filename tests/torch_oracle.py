"""What the later peer-oracle rounds (test_peer_oracle12.py, test_peer_oracle13.py)
share: tolerances by dtype and the plumbing to their torch twins.  Imported after
their ``pytest.importorskip("torch")`` (pytest puts tests/ on the path)."""
import numpy as np
import torch


def tol(dtype, k=1):
    """Sums in another order: a few float32 ulps of the largest term, or float64's."""
    return dict(rtol=2e-4 * k, atol=2e-5 * k) if dtype == np.float32 else \
        dict(rtol=1e-10 * k, atol=1e-12 * k)


def tdtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def copy_params(model, net):
    """The nnumba model's parameters into the torch module, in order."""
    with torch.no_grad():
        for (_, p), t in zip(model.params(), net.parameters(), strict=True):
            t.copy_(torch.from_numpy(np.array(p.value)))


def loss_pair(loss, torch_loss, y_hat, y, dtype):
    """The loss's value and gradient against torch's on the same arrays."""
    value = loss.forward(y_hat, y)
    grad = loss.backward()
    yt = torch.from_numpy(np.ascontiguousarray(y_hat)).requires_grad_(True)
    ref = torch_loss(yt, torch.from_numpy(np.ascontiguousarray(y)))
    ref.backward()
    np.testing.assert_allclose(value, ref.item(), rtol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(grad, yt.grad.numpy(), **tol(dtype))
