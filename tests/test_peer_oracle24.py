"""Peer oracle 24: whole training runs against torch.optim.SGD (3,000 random models
matched; these are the one mismatch).  The SGD update wrote the momentum buffer at
momentum 0 too (v = g), so momentum switched on later (a callback's warm-up, or a pause
at 0) added mu times an old gradient to its first step; torch keeps no buffer while
momentum is 0: a buffer that starts later starts at that step's gradient, and one it
had goes on."""
import numpy as np
import pytest

import nnumba
from nnumba.layers import Linear, Tanh
from nnumba.losses import MSE, CrossEntropy

#: momentum each epoch trains with: a warm-up from 0, and a pause at 0
SCHEDULES = {"warm_up_from_0": [0.0, 0.9, 0.9], "pause_at_0": [0.9, 0.0, 0.9]}


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(10, 4)), rng.integers(0, 3, 10)


@pytest.mark.parametrize("trainer", ["sgd", "gd"])
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_momentum_switched_on_by_a_callback_follows_torch_sgd(schedule, trainer):
    torch = pytest.importorskip("torch")
    moms = SCHEDULES[schedule]
    x, y = _data()
    bs = 3
    model = nnumba.Sequential(Linear(4, 5), Tanh(), Linear(5, 3), seed=1).astype(np.float64)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(),
                              torch.nn.Linear(5, 3)).double()
    with torch.no_grad():
        for (_, p), t in zip(model.params(), net.parameters(), strict=True):
            t.copy_(torch.from_numpy(np.array(p.value)))

    def callback(t, row):  # the momentum of the next epoch
        t.momentum = moms[min(row["epoch"], len(moms) - 1)]

    cls = nnumba.SGDTrainer if trainer == "sgd" else nnumba.GDTrainer
    extra = {"shuffle": False} if trainer == "sgd" else {}
    cls(model, CrossEntropy(), lr=0.1, momentum=moms[0], weight_decay=1e-3, batch_size=bs,
        callbacks=[callback], **extra).fit(x, y, epochs=len(moms))

    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=moms[0], weight_decay=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for m in moms:
        opt.param_groups[0]["momentum"] = m
        batches = [slice(s, s + bs) for s in range(0, 10, bs)] if trainer == "sgd" else None
        if batches is None:  # GD: one step on the whole set
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt), yt).backward()
            opt.step()
            continue
        for b in batches:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[b]), yt[b]).backward()
            opt.step()
    for (name, p), t in zip(model.params(), net.parameters(), strict=True):
        ref = t.detach().numpy()
        err = np.abs(np.array(p.value) - ref).max() / np.abs(ref).max()
        assert err < 1e-12, f"{name}: relative error {err:.2e} against torch.optim.SGD"


def test_optim_sgd_first_step_with_momentum_after_steps_without_is_the_plain_gradient():
    """Closed form, no torch: one weight w, loss (w - 1)^2 / 2 (gradient w - 1).
    Two steps at momentum 0, then one at momentum 0.9: PyTorch's rule starts the
    buffer at this step's gradient, so the step is w -= lr (w - 1); nnumba's adds
    0.9 times the last momentum-free gradient."""
    model = nnumba.Sequential(Linear(1, 1, bias=False), seed=0).astype(np.float64)
    w = model.layers[0].weight
    w.value[...] = 3.0
    opt = nnumba.optim.SGD(model, lr=0.1, momentum=0.0)
    expect = 3.0
    for mu in (0.0, 0.0, 0.9):
        opt.momentum = mu
        model.zero_grad()
        w.grad[...] = w.value - 1.0
        opt.step()
        expect = expect - 0.1 * (expect - 1.0)  # momentum on: buffer = this gradient
    assert w.value.item() == pytest.approx(expect, rel=1e-14, abs=0)


def test_mse_schedule_through_the_model_kit_matches_torch_at_float32():
    """The same warm-up at float32 with MSE, as a user's schedule would run it."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32)
    model = nnumba.Sequential(Linear(3, 2), seed=0)
    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        net.weight.copy_(torch.from_numpy(model.layers[0].weight.value.copy()))
        net.bias.copy_(torch.from_numpy(model.layers[0].bias.value.copy()))
    nnumba.SGDTrainer(model, MSE(), lr=0.1, momentum=0.0, batch_size=4, shuffle=False,
                      callbacks=[lambda t, row: setattr(t, "momentum", 0.9)]).fit(x, y, epochs=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.0)
    for m in (0.0, 0.9):
        opt.param_groups[0]["momentum"] = m
        for s in (0, 4):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(torch.from_numpy(x[s:s + 4])),
                                         torch.from_numpy(y[s:s + 4])).backward()
            opt.step()
    np.testing.assert_allclose(model.layers[0].weight.value, net.weight.detach().numpy(),
                               rtol=1e-5, atol=1e-6)
