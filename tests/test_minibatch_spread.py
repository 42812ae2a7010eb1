"""The slide's "any partial sum is also an unbiased estimate, although of greater
variance": the mini-batch gradient against the whole set's, checked exactly (a
partition's batches average to the whole gradient) and against the closed form of
sampling without replacement."""
import numpy as np

from nnumba.data import load_dataset
from nnumba.experiments import minibatch
from nnumba.experiments.minibatch import _gradient, gradient_spread
from nnumba import build
from nnumba.losses import CrossEntropy


def _set(n):
    data = load_dataset("mnist-5k")
    return data.x_train[:n].astype(np.float64), data.y_train[:n]


def test_the_batches_of_a_partition_average_to_the_whole_gradient():
    x, y = _set(60)
    model, loss = build("mlp", seed=3).astype(np.float64), CrossEntropy()
    whole = _gradient(model, loss, x, y)
    order = np.random.default_rng(1).permutation(60)
    parts = [_gradient(model, loss, x[order[i:i + 12]], y[order[i:i + 12]])
             for i in range(0, 60, 12)]
    np.testing.assert_allclose(np.mean(parts, axis=0), whole, atol=1e-12)
    assert np.linalg.norm(parts[0] - whole) > 1e-3 * np.linalg.norm(whole)  # each one differs


def test_the_spread_of_a_batch_gradient_is_the_closed_form_of_sampling_without_replacement():
    x, y = _set(60)
    spread = gradient_spread(x, y, (1, 5, 30, 60), draws=400, seed=2)
    assert 60 not in spread["batches"]  # the whole set has no spread
    # sigma^2 from the per-sample gradients, computed here another way: the per-sample
    # gradients' mean squared distance to their mean.
    model, loss = build("mlp", seed=2).astype(np.float64), CrossEntropy()
    each = np.array([_gradient(model, loss, x[i:i + 1], y[i:i + 1]) for i in range(60)])
    sigma2 = float(np.mean(np.sum((each - each.mean(axis=0)) ** 2, axis=1)))
    assert abs(spread["sigma2"] - sigma2) < 1e-9 * sigma2
    for b, entry in spread["batches"].items():
        closed = sigma2 / b * (60 - b) / 59
        assert abs(entry["closed_form"] - closed) < 1e-9 * closed
        assert 0.8 < entry["variance"] / closed < 1.25, (b, entry)  # 400 draws: ~5 % spread
        assert entry["bias"] < 4 * entry["bias_sd"], (b, entry)     # unbiased, up to chance
    # Greater variance the smaller the batch.
    variances = [spread["batches"][b]["variance"] for b in (1, 5, 30)]
    assert variances[0] > variances[1] > variances[2]


def test_the_experiment_reports_the_spread():
    result = minibatch.run(fast=True, batch_sizes=(1, 10, 500), epochs=1)
    spread = result.numbers["gradient_spread"]
    assert sorted(spread["batches"]) == [1, 10]
    assert "sigma^2/B (N-B)/(N-1)" in result.table
