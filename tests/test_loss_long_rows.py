"""A loss sums each sample's terms (squares, exponentials: all >= 0, so their rounding
errors add up): over long rows in float32 the sums stay within a float32 sum's error
of the exact one, against math.fsum of the same terms (peer oracle 17)."""
import math

import numpy as np
import pytest

from nnumba.losses import MSE, CrossEntropy


@pytest.mark.parametrize("k", [100_000, 1_000_000])
def test_mse_float32_sum_of_a_long_row(k):
    rng = np.random.default_rng(k)
    yhat = rng.uniform(0, 1, (2, k)).astype(np.float32)
    y = np.zeros_like(yhat)
    exact = math.fsum((yhat.astype(np.float64) ** 2).ravel())
    got = MSE(reduction="sum").forward(yhat, y)
    assert abs(got - exact) / exact < 1e-6   # a plain float32 sum: 2e-5 to 4e-4


def test_mse_keeps_an_infinite_sum_infinite():
    yhat = np.full((1, 300), 1e30, np.float32)   # squares overflow float32
    assert MSE(reduction="sum").forward(yhat, np.zeros_like(yhat)) == np.inf


@pytest.mark.parametrize("c", [200_000, 1_000_000])
def test_cross_entropy_float32_over_many_classes(c):
    rng = np.random.default_rng(c)
    z = rng.uniform(-1, 1, (3, c)).astype(np.float32)
    labels = rng.integers(0, c, 3)
    loss = CrossEntropy(reduction="sum")
    got = loss.forward(z, labels)
    grad = loss.backward(1.0)
    z64 = z.astype(np.float64)
    m = z64.max(axis=1, keepdims=True)
    e = np.exp(z64 - m)
    total = np.array([math.fsum(row) for row in e])
    want = float(np.sum(m[:, 0] - z64[np.arange(3), labels] + np.log(total)))
    soft = e / total[:, None]
    assert abs(got - want) < 3e-6 * 3           # per sample a plain sum was off by 7e-5
    soft[np.arange(3), labels] -= 1
    rel = np.abs(grad - soft) / np.maximum(np.abs(soft), 1e-30)
    assert rel.max() < 5e-6                      # a plain sum: 1e-4 on every entry

