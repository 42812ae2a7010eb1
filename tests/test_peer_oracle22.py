"""Peer oracle 22 (no mismatch found): models whose shapes sit on either side of each
kernel's path threshold (the few-rows GEMM at 32 rows, GEMV, the 2**18 split, direct
convolution up to 128 taps and im2col beyond, filters not in fours, Winograd, a
stride past the kernel, the fused conv + ReLU + max-pool), against torch: forward,
input and parameter gradients (asked for or not: only without runs the fused step's
in-cache backward), predict in evaluation mode at the batch and at 1, and two SGD
steps with momentum and weight decay.  Run at 2 threads too, where the splits run."""
import numpy as np
import pytest

import nnumba

torch = pytest.importorskip("torch")
from torch_oracle import copy_params, from_spec  # noqa: E402  (after the skip)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def L(i, o, bias=True):
    return {"type": "Linear", "in_features": i, "out_features": o, "bias": bias}


def C(c, d, k, s=1, p=0):
    return {"type": "Conv2d", "in_channels": c, "out_channels": d, "kernel_size": k,
            "stride": s, "padding": p}


R, F = {"type": "ReLU"}, {"type": "Flatten"}


def MP(k, s=None):
    return {"type": "MaxPool2d", "kernel_size": k, "stride": s}


CASES = [  # (spec, per-sample shape, batch)
    ([L(33, 31)], (33,), 32), ([L(33, 31)], (33,), 33), ([L(129, 127)], (129,), 1),
    ([L(7, 1)], (7,), 5), ([L(64, 64)], (64,), 64), ([L(600, 600), R, L(600, 3)], (600,), 3),
    ([C(14, 5, 3)], (14, 6, 6), 3), ([C(15, 5, 3)], (15, 6, 6), 3),
    ([C(128, 3, 1)], (128, 4, 4), 1), ([C(129, 3, 1)], (129, 4, 4), 1),
    ([C(15, 5, 3, 1, 1)], (15, 5, 6), 3), ([C(12, 5, 5, 1, 1)], (12, 17, 17), 3),
    ([C(40, 5, 4)], (40, 11, 11), 3), ([C(3, 5, 3, 4)], (3, 17, 18), 2),
    ([C(1, 8, 5), R, MP(3)], (1, 28, 28), 3), ([C(3, 4, 3, 1, 1), R, MP((3, 3), (2, 3))],
                                              (3, 11, 12), 3),
    ([C(3, 5, 3, 1, 1), R, MP(2)], (3, 13, 13), 3),
    ([C(3, 6, 3, 1, 1), R, C(6, 12, 3, 2, 1), R, MP(2), C(12, 16, 3, 1, 1), R,
      {"type": "AdaptiveAvgPool2d", "output_size": 3}, F, L(144, 33), R, L(33, 1)],
     (3, 17, 17), 7),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("spec,shape,n", CASES)
def test_thresholds_match_torch(spec, shape, n, dtype, input_grad):
    rng = np.random.default_rng(0)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    model = nnumba.build(spec, seed=0).astype(dtype)
    model.input_grad = input_grad
    net = from_spec(spec, dtype)
    copy_params(model, net)
    x = rng.standard_normal((n,) + shape).astype(dtype)
    y = np.array(model.forward(x))
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = net(xt)
    assert _rel(y, yt.detach().numpy()) < tol
    g = rng.standard_normal(y.shape).astype(dtype)
    model.zero_grad()
    dx = model.backward(g.copy())
    yt.backward(torch.from_numpy(g))
    if input_grad:
        assert _rel(dx, xt.grad.numpy()) < tol
    for (name, p), t in zip(model.params(), net.parameters(), strict=True):
        assert _rel(p.grad, t.grad.numpy()) < tol, name
    assert np.array_equal(model.predict(x, batch_size=n), y)  # the same kernels
    assert _rel(model.predict(x, batch_size=1), y) < (1e-5 if dtype == np.float32 else 1e-12)
    opt = nnumba.SGD(model, lr=0.01, momentum=0.9, weight_decay=0.01)
    topt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=0.01)
    for _ in range(2):
        xs = rng.standard_normal(x.shape).astype(dtype)
        model.zero_grad()
        topt.zero_grad()
        ys = np.array(model.forward(xs))
        gs = rng.standard_normal(ys.shape).astype(dtype) / n
        model.backward(gs)
        net(torch.from_numpy(xs)).backward(torch.from_numpy(gs))
        opt.step()
        topt.step()
    for (name, p), t in zip(model.params(), net.parameters(), strict=True):
        assert _rel(p.value, t.data.numpy()) < 5 * tol, name
