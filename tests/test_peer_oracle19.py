"""Peer oracle 19: the SVM penalty lam ||w||^2 of a large float32 model, against the
float64 sum of the same squares (float32 vdot was 1.7e-5 off at 2**23 weights)."""
import numpy as np
import pytest

import nnumba
from nnumba.layers.linear import Linear
from nnumba.losses import Hinge


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_hinge_penalty_is_the_float64_sum_of_the_squares(dtype):
    n = 2 ** 22
    model = nnumba.Sequential(Linear(n, 1, bias=False)).astype(dtype)
    model.layers[0].weight.value[...] = np.random.default_rng(0).uniform(-1, 1, (1, n))
    w = model.layers[0].weight.value.astype(np.float64).ravel()
    want = float(np.dot(w, w))  # float32 squares are exact in float64
    got = Hinge(lam=0.5).penalty(model.params()) / 0.5
    assert abs(got - want) <= 1e-12 * want
