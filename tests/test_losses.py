"""Losses against closed forms and finite differences; bad targets are refused."""
import numpy as np
import pytest
from scipy.special import log_softmax, log_expit

from nnumba.errors import DTypeError, LabelError, ShapeError
from nnumba.losses import MSE, CrossEntropy, Hinge, Logistic, PerceptronCriterion
from nnumba.layers import Linear

rng = np.random.default_rng(1)


def finite_difference(loss, y_hat, y, eps=1e-6):
    grad = np.empty_like(y_hat)
    for i in np.ndindex(y_hat.shape):
        keep = y_hat[i]
        y_hat[i] = keep + eps
        up = loss.forward(y_hat, y)
        y_hat[i] = keep - eps
        down = loss.forward(y_hat, y)
        y_hat[i] = keep
        grad[i] = (up - down) / (2 * eps)
    return grad


CASES = [
    (CrossEntropy, lambda: (rng.normal(size=(6, 4)) * 3, rng.integers(0, 4, 6)),
     lambda z, y: -log_softmax(z, axis=1)[np.arange(len(y)), y]),
    (MSE, lambda: (rng.normal(size=(5, 3)), rng.normal(size=(5, 3))),
     lambda p, y: ((p - y) ** 2).sum(axis=1)),
    (Logistic, lambda: (rng.normal(size=(7,)) * 2, rng.choice([-1, 1], 7)),
     lambda p, y: -log_expit(y * p)),
    (Hinge, lambda: (rng.normal(size=(8, 1)), rng.choice([-1, 1], 8)),
     lambda p, y: np.maximum(0, 1 - y * p.reshape(-1))),
    (PerceptronCriterion, lambda: (rng.normal(size=(8,)), rng.choice([-1, 1], 8)),
     lambda p, y: np.maximum(0, -y * p)),
]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("cls,make,reference", CASES, ids=[c[0].__name__ for c in CASES])
def test_value_and_gradient(cls, make, reference, reduction):
    y_hat, y = make()
    loss = cls(reduction=reduction)
    per_sample = reference(y_hat, y)
    expected = per_sample.mean() if reduction == "mean" else per_sample.sum()
    if cls is MSE and reduction == "mean":
        expected = per_sample.sum() / y_hat.size  # PyTorch's mean over every element
    assert loss.forward(y_hat, y) == pytest.approx(expected, rel=1e-12)
    grad = loss.backward().copy()
    np.testing.assert_allclose(grad, finite_difference(loss, y_hat, y), rtol=1e-5, atol=1e-7)
    loss.forward(y_hat, y)
    np.testing.assert_allclose(loss.backward(0.25), 0.25 * grad, rtol=1e-15)


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]], np.float32)
    loss = CrossEntropy()
    value = loss.forward(z, np.array([2, 1]))
    assert value == pytest.approx((2e4 + np.log(3)) / 2, rel=1e-6)
    assert np.isfinite(loss.backward()).all()


@pytest.mark.parametrize("scale", [1e7, 1e8, 3e38])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_keeps_the_softmax_part_beside_large_logits(scale, dtype):
    # Logits close together but large: the loss is O(1), and a sum log(total) + m
    # formed first would round it away against m.
    z = (scale * np.array([[1.0, 1.0, 1.0], [1.0, 1 - 1e-7, 1.0]])).astype(dtype)
    labels = np.array([0, 1])
    expected = -log_softmax(z.astype(np.float64), axis=1)[[0, 1], labels].mean()
    assert CrossEntropy().forward(z, labels) == pytest.approx(expected, rel=1e-6)


def test_logistic_is_stable_for_huge_margins():
    loss = Logistic(reduction="sum")
    assert loss.forward(np.array([1e4, -1e4]), np.array([1, 1])) == pytest.approx(1e4)
    assert np.isfinite(loss.backward()).all()


def test_hinge_penalty_is_lambda_norm_squared_of_weights_only():
    layer = Linear(3, 1).astype(np.float64)
    params = [(f"0.{k}", p) for k, p in layer.params().items()]
    loss = Hinge(lam=0.3)
    w = layer.weight.value
    assert loss.penalty(params) == pytest.approx(0.3 * float((w ** 2).sum()))
    loss.penalty_backward(params)
    np.testing.assert_allclose(layer.weight.grad, 0.6 * w)
    assert not layer.bias.grad.any()


@pytest.mark.parametrize("loss,y_hat,y,error,match", [
    (CrossEntropy(), np.zeros((3, 4)), np.array([0, 4, 1]), LabelError, r"\[0, 4\)"),
    (CrossEntropy(), np.zeros((3, 4)), np.array([0, -1, 1]), LabelError, r"\[0, 4\)"),
    (CrossEntropy(), np.zeros((3, 4)), np.array([0.0, 1.0, 1.0]), LabelError, "integer"),
    (CrossEntropy(), np.zeros((3, 4)), np.array([0, 1]), LabelError, "3 predictions but 2"),
    (CrossEntropy(), np.zeros((0, 4)), np.array([], int), ShapeError, "empty"),
    (CrossEntropy(), np.zeros((3, 4), int), np.array([0, 1, 2]), DTypeError, "float"),
    (Logistic(), np.zeros(3), np.array([0, 1, 1]), LabelError, "-1 or"),
    (Hinge(), np.zeros((3, 2)), np.array([1, 1, -1]), ShapeError, r"\(N,\) or \(N, 1\)"),
    (MSE(), np.zeros((3, 2)), np.zeros((3, 3)), ShapeError, "do not match"),
])
def test_bad_targets_are_refused(loss, y_hat, y, error, match):
    with pytest.raises(error, match=match):
        loss.forward(y_hat, y)


@pytest.mark.parametrize("loss", [MSE(), CrossEntropy()])
def test_predictions_with_no_output_per_sample_are_refused(loss):
    with pytest.raises(ShapeError, match="got no predictions"):
        loss.forward(np.zeros((3, 0), np.float32), np.zeros((3, 0)))


def test_a_gradient_weight_beyond_the_dtype_is_refused():
    """1e39 is a finite Python float but infinite in float32: every gradient inf."""
    from nnumba.errors import SpecError
    loss = MSE()
    loss.forward(np.ones((2, 2), np.float32), np.zeros((2, 2)))
    with pytest.raises(SpecError, match="backward's weight must be a finite number"):
        loss.backward(1e39)
    # d/dy of mean((y - t)^2) over 4 values at y - t = 1 is 2/4, times the weight
    np.testing.assert_allclose(loss.backward(3.0), np.full((2, 2), 1.5))
