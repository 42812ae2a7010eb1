"""Issue-2 benchmarks: an MLP 784-256-10 epoch beside PyTorch, the perceptron beside
scikit-learn. Run: pytest benchmarks/bench_mlp.py (ratios print at the end)."""
import numpy as np
import pytest
from conftest import fashion_sized

import nnumba
from nnumba.data import load_dataset
from nnumba.losses import CrossEntropy
from nnumba.train import SGDTrainer, train_perceptron

BATCH = 100


@pytest.fixture(scope="module")
def fashion(request):
    n = 6_000 if request.config.getoption("benchmark_disable") else 60_000
    return fashion_sized(n)


def test_mlp_epoch_nnumba(benchmark, record, fashion):
    x, y = fashion
    record("mlp-epoch", "nnumba", samples=len(x))
    model = nnumba.build("mlp", seed=0)
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.01, batch_size=BATCH, seed=0)
    trainer.fit(x[:BATCH], y[:BATCH], epochs=1)  # compile outside the timing
    benchmark.pedantic(trainer.fit, args=(x, y), kwargs={"epochs": 1}, rounds=3, iterations=1)


def test_mlp_epoch_torch(benchmark, record, fashion, torch_threads):
    torch = torch_threads
    x, y = fashion
    record("mlp-epoch", "torch", samples=len(x))
    xt, yt = torch.from_numpy(x.reshape(len(x), -1)), torch.from_numpy(y)
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        for idx in torch.randperm(len(xt), generator=gen).split(BATCH):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()

    benchmark.pedantic(epoch, rounds=3, iterations=1)


@pytest.fixture(scope="module")
def zeros_ones():
    data = load_dataset("mnist-5k")
    x, y = data.binary(0, 1, "train")
    return x.reshape(len(x), -1).astype(np.float64), y


def test_perceptron_nnumba(benchmark, record, zeros_ones):
    x, y = zeros_ones
    record("perceptron-0v1", "nnumba", samples=len(x))
    train_perceptron(x, y, max_epochs=1)  # compile outside the timing
    result = benchmark(train_perceptron, x, y, max_epochs=100)
    assert result.converged


def test_perceptron_sklearn(benchmark, record, zeros_ones):
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, y = zeros_ones
    record("perceptron-0v1", "sklearn", samples=len(x))
    # The same algorithm (eta 1, no penalty, in order) for the same number of
    # epochs our run needed: sklearn's own stopping rule differs from the lecture's.
    epochs = len(train_perceptron(x, y, max_epochs=100).history)
    clf = linear_model.Perceptron(eta0=1.0, shuffle=False, tol=None, max_iter=epochs)
    benchmark(clf.fit, x, y)
    assert clf.score(x, y) == 1.0
