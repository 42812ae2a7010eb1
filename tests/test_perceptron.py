"""train_perceptron and PerceptronResult on bad input: nnumba's own errors, raised
before the first epoch; and empty batches predicted as empty, as numpy's own
w . x + b gives them."""
import numpy as np
import pytest

from nnumba.errors import DTypeError, LabelError, NonFiniteError, ShapeError
from nnumba.train import train_perceptron

rng = np.random.default_rng(0)
X = rng.normal(size=(20, 3))
Y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, 1, -1)


@pytest.mark.parametrize("x, error, message", [
    (np.zeros((20, 0)), ShapeError, r"training samples have no features \(shape \(20, 0\)\)"),
    (np.zeros((20, 2, 0)), ShapeError, r"training samples have no features"),
    (np.array(1.5), ShapeError, r"training inputs must be an array of samples \(N, ...\), "
                                r"got a 0-d array"),
    (np.zeros((0, 3)), ShapeError, r"training set is empty"),
    (np.zeros((20, 3), int), DTypeError, r"training inputs must be a numpy array of float16, "
                                         r"float32 or float64"),
    (np.zeros((20, 3), np.longdouble), DTypeError, r"numba has no long double"),  # TypingError
])
def test_training_inputs_that_are_not_samples_are_refused(x, error, message):
    """(20, 0) used to raise numpy's 'zero-size array to reduction', 0-d 'len() of
    unsized object'."""
    with pytest.raises(error, match=message):
        train_perceptron(x, Y)


@pytest.mark.parametrize("x_test, y_test, error, message", [
    (None, Y, DTypeError, r"x_test and y_test come together; got only y_test"),
    (X, None, DTypeError, r"x_test and y_test come together; got only x_test"),
    (np.zeros((5, 0)), Y[:5], ShapeError, r"test samples have no features"),
    (np.array(0.0), Y, ShapeError, r"test inputs must be an array of samples"),
    (X[:5], Y[:4], LabelError, r"test set has 5 inputs but labels of shape \(4,\)"),
    (X[:5, :2], Y[:5], ShapeError, r"test inputs have 2 features, training inputs 3"),
])
def test_test_sets_are_checked_as_the_gradient_trainers_check_them(x_test, y_test, error,
                                                                    message):
    """y_test without x_test used to be ignored without a word."""
    calls = []
    with pytest.raises(error, match=message):
        train_perceptron(X, Y, x_test=x_test, y_test=y_test, callback=calls.append)
    assert calls == []  # refused before the first epoch


def test_a_test_set_gives_the_error_rate_of_the_weights_after_each_epoch():
    xt = rng.normal(size=(15, 3))
    yt = np.where(xt[:, 0] > 0, 1, -1)
    result = train_perceptron(X, Y, max_epochs=3, x_test=xt, y_test=yt)
    w = np.zeros(4)  # the lecture's loop, written out: the last epoch's test error
    xs = np.column_stack([X, np.ones(20)])
    for _ in range(len(result.history)):
        for xn, yn in zip(xs, Y):
            if yn * (w @ xn) <= 0:
                w += yn * xn
    errors = np.mean(np.where(np.column_stack([xt, np.ones(15)]) @ w >= 0, 1, -1) != yt)
    assert result.history[-1]["test_error"] == pytest.approx(errors)


def test_an_empty_batch_predicts_nothing():
    """x[:0] used to raise numpy's 'cannot reshape array of size 0'."""
    result = train_perceptron(X, Y)
    for empty in (X[:0], np.zeros((0, 1, 3)), np.zeros((0, 3), np.float32)):
        assert result.predict(empty).shape == (0,) and result.decision(empty).shape == (0,)
    with pytest.raises(ShapeError, match="inputs have 2 features, the weights 3"):
        result.predict(np.zeros((0, 2)))


def test_predictions_are_the_sign_of_w_x_plus_b():
    result = train_perceptron(X, Y)
    x = rng.normal(size=(7, 3))
    np.testing.assert_array_equal(result.predict(x),
                                  np.where(x @ result.w + result.b >= 0, 1, -1))
    np.testing.assert_array_equal(result.predict(x.reshape(7, 1, 3)), result.predict(x))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_not_predicted(bad):
    """NaN compared >= 0 is False: it used to be predicted -1."""
    result = train_perceptron(X, Y)
    x = np.zeros((3, 3))
    x[1, 2] = bad
    with pytest.raises(NonFiniteError, match="perceptron: inputs hold NaN or infinity"):
        result.predict(x)
