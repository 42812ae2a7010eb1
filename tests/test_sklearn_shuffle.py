"""NNClassifier / NNRegressor(shuffle=False): SGD visits the samples in the order
given, as MLPClassifier's ``shuffle`` (the estimators always shuffled before).
Reference: PyTorch's SGD over the same batches in order, from the same weights."""
import numpy as np
import pytest

import nnumba

sklearn = pytest.importorskip("sklearn")
from nnumba.sklearn import NNClassifier, NNRegressor  # noqa: E402

SPEC = [{"type": "Linear", "in_features": 5, "out_features": 7}, {"type": "Tanh"},
        {"type": "Linear", "in_features": 7, "out_features": 3}]


def torch_twin(net, spec, random_state):
    """``net`` (torch, float64) given the initial weights an estimator with
    ``random_state`` builds ``spec`` with: its first draw seeds them."""
    import torch
    start = nnumba.Sequential.from_spec(
        spec, seed=int(np.random.RandomState(random_state).randint(2**31 - 1)))
    with torch.no_grad():
        for (_, p), t in zip(start.params(), net.parameters()):
            t.copy_(torch.from_numpy(p.value.astype(np.float64)))
    return net


def _data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(53, 5))
    return x, np.array(["b", "a", "c"])[rng.integers(0, 3, 53)]


def test_shuffle_false_trains_in_order_as_torch():
    torch = pytest.importorskip("torch")
    x, labels = _data()
    est = NNClassifier(SPEC, epochs=3, lr=0.05, momentum=0.9, batch_size=8, shuffle=False,
                       dtype="float64", random_state=3).fit(x, labels)
    net = torch_twin(torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(),
                                         torch.nn.Linear(7, 3)).double(), SPEC, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(np.searchsorted(np.unique(labels), labels))
    for _ in range(3):
        for s in range(0, len(x), 8):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[s:s + 8]), yt[s:s + 8]).backward()
            opt.step()
    for (_, p), t in zip(est.model_.params(), net.parameters()):
        np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=1e-10, atol=1e-12)
    shuffled = NNClassifier(SPEC, epochs=3, lr=0.05, momentum=0.9, batch_size=8,
                            dtype="float64", random_state=3).fit(x, labels)
    assert not np.allclose(shuffled.model_.params()[0][1].value, est.model_.params()[0][1].value)


@pytest.mark.parametrize("cls", [NNClassifier, NNRegressor])
def test_shuffle_must_be_a_bool(cls):
    x, labels = _data()
    y = labels if cls is NNClassifier else x[:, 0]
    with pytest.raises((TypeError, ValueError), match="shuffle"):
        spec = SPEC if cls is NNClassifier else \
            [{"type": "Linear", "in_features": 5, "out_features": 1}]
        cls(spec, shuffle="no", epochs=1).fit(x, y)
