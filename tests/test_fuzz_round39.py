"""Fuzz round 39 (random call sequences against torch): model.astype dropped the
gradients accumulated so far (a same-dtype astype too); a backward after an optimizer
step paired the kept activations with the stepped weights, the gradient of no
function (torch refuses it)."""
import numpy as np
import pytest

import nnumba
from nnumba.errors import NoGradientError
from nnumba.layers import Linear, Tanh


def _model():
    m = nnumba.Sequential(Linear(3, 4), Tanh(), Linear(4, 2), seed=0)
    m.input_grad = True
    return m


def _torch_grads(model, x, g, weights):
    """dl/dx and dl/dW of every parameter, by torch, for ``weights`` ({name: array})."""
    torch = pytest.importorskip("torch")
    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    w = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for k, v in weights.items()}
    y = torch.tanh(xt @ w["0.weight"].T + w["0.bias"]) @ w["2.weight"].T + w["2.bias"]
    y.backward(torch.tensor(np.asarray(g, np.float64)))
    return xt.grad.numpy(), {k: v.grad.numpy() for k, v in w.items()}


@pytest.mark.parametrize("target", [np.float32, np.float64])
def test_astype_keeps_accumulated_gradients(target):
    """model.astype converts the gradients accumulated so far (as Layer.astype does for a
    layer on its own, and torch's module.double() does); a same-dtype astype is a no-op.
    Now every model.astype, even astype(float32) on a float32 model, zeroes them."""
    m = _model()
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    g = np.ones((5, 2), np.float32)
    weights = {n: np.array(p.value) for n, p in m.params()}
    m.forward(x)
    m.backward(g)
    _, want = _torch_grads(m, x, g, weights)
    m.astype(target)
    for name, p in m.params():
        np.testing.assert_allclose(p.grad, want[name], rtol=1e-4, atol=1e-5,
                                   err_msg=f"{name}.grad after astype({target.__name__})")


def test_backward_after_sgd_step_is_refused_or_uses_forward_weights():
    """forward, backward, opt.step(), backward: the second backward pairs the kept
    activations (forward-time weights) with the stepped weights, a gradient of no
    function.  torch refuses it ("modified by an inplace operation"); nnumba should
    raise NoGradientError (as it does after a layer's own forward or a predict), or give
    the gradient at the weights of the forward.  It was a silent mixture of both; a
    forward again makes backward right (against torch at the stepped weights)."""
    m = _model().astype(np.float64)
    x = np.random.default_rng(0).normal(size=(5, 3))
    g = np.ones((5, 2))
    weights = {n: np.array(p.value) for n, p in m.params()}
    opt = nnumba.SGD(m, lr=0.5)
    m.forward(x)
    m.backward(g)
    opt.step()
    m.zero_grad()
    with pytest.raises(NoGradientError, match="optimizer step"):
        m.backward(g)
    weights = {n: np.array(p.value) for n, p in m.params()}
    m.forward(x)
    dx = m.backward(g)
    want_dx, want = _torch_grads(m, x, g, weights)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-9, atol=1e-12)
    for name, p in m.params():
        np.testing.assert_allclose(p.grad, want[name], rtol=1e-9, atol=1e-12, err_msg=name)
