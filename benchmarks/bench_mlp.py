"""The MLP 784-256-10 epoch beside PyTorch, and the perceptron beside scikit-learn,
each peer in a fresh process of its own, taking turns with nnumba (conftest.py).
Run: pytest benchmarks/bench_mlp.py (the ratio table prints at the end)."""
import numpy as np
import pytest
from conftest import fashion_sized, has, turns

import nnumba
from nnumba.data import load_dataset
from nnumba.losses import CrossEntropy
from nnumba.train import SGDTrainer, train_perceptron

BATCH = 100
LR, MOMENTUM = 0.01, 0.9


@pytest.fixture(scope="module")
def fashion(quick):
    return fashion_sized(6_000 if quick else 60_000)


def test_mlp_epoch(benchmark, peers, files, fashion, quick):
    x, y = fashion
    model = nnumba.build("mlp", seed=0)
    trainer = SGDTrainer(model, CrossEntropy(), lr=LR, momentum=MOMENTUM, batch_size=BATCH,
                         seed=0)
    trainer.fit(x[:BATCH], y[:BATCH], epochs=1)  # compile outside the timing
    peer = None
    if has("torch"):
        peer = peers("torch", {"kind": "torch-train", "spec": model.spec(), "batch": BATCH,
                               "lr": LR, "momentum": MOMENTUM, **files(x=x, y=y)})
    turns(benchmark, "mlp-epoch", lambda: trainer.fit(x, y, epochs=1), peer,
          rounds=1 if quick else 15, samples=len(x))  # near its target: more rounds


@pytest.fixture(scope="module")
def zeros_ones():
    data = load_dataset("mnist-5k")
    x, y = data.binary(0, 1, "train")
    return x.reshape(len(x), -1).astype(np.float64), y


def test_perceptron(benchmark, peers, files, zeros_ones, quick):
    x, y = zeros_ones
    train_perceptron(x, y, max_epochs=1)  # compile outside the timing
    # sklearn's own stopping rule differs from the lecture's: it runs the epochs ours needed.
    epochs = len(train_perceptron(x, y, max_epochs=100).history)
    peer = None
    if has("sklearn"):
        peer = peers("sklearn", {"kind": "sklearn-perceptron", "epochs": epochs,
                                 **files(x=x, y=y)})
    result = turns(benchmark, "perceptron-0v1", lambda: train_perceptron(x, y, max_epochs=100),
                   peer, rounds=3 if quick else 101, samples=len(x))
    assert result.converged
