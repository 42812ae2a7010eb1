"""Dense layers against closed forms, and the validation that guards every kernel."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

import nnumba
from nnumba.errors import DTypeError, NonFiniteError, ShapeError
from nnumba.layers import Flatten, Identity, Linear, ReLU, Sigmoid, Tanh, Threshold

rng = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,reference", [
    (ReLU, lambda x: np.maximum(x, 0)),
    (Tanh, np.tanh),
    (Sigmoid, expit),
    (Threshold, lambda x: np.where(x >= 0, 1.0, -1.0)),
    (Identity, lambda x: x),
])
def test_activation_matches_closed_form(cls, reference, dtype):
    x = (rng.normal(size=(7, 13)) * 5).astype(dtype)
    x[0, :4] = [0.0, -0.0, 80.0, -80.0]  # the threshold's edge and saturation
    layer = cls().astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(layer.forward(x), reference(x.astype(np.float64)), rtol=tol, atol=tol)


def test_tanh_is_the_lectures_form_and_stable():
    x = np.array([[-1e4, -20.0, 0.0, 1e-3, 20.0, 1e4]])
    y = Tanh().astype(np.float64).forward(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, 2 / (1 + np.exp(-2 * np.clip(x, -300, 300))) - 1, atol=1e-15)


def test_linear_matches_numpy_and_pytorch_layout():
    layer = Linear(4, 3).astype(np.float64)
    x = rng.normal(size=(5, 4))
    w, b = layer.weight.value, layer.bias.value
    np.testing.assert_allclose(layer.forward(x), x @ w.T + b, rtol=1e-14)
    assert w.shape == (3, 4)  # (out, in) as torch.nn.Linear
    g = rng.normal(size=(5, 3))
    dx = layer.backward(g)
    np.testing.assert_allclose(dx, g @ w)
    np.testing.assert_allclose(layer.weight.grad, g.T @ x)
    np.testing.assert_allclose(layer.bias.grad, g.sum(0))


def test_flatten_is_a_view():
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    y = Flatten().forward(x)
    assert y.shape == (2, 12) and np.shares_memory(x, y)


def test_errors_name_the_layer_and_its_position():
    model = nnumba.build("mlp")
    x = np.zeros((4, 1, 28, 28), np.float32)
    with pytest.raises(DTypeError, match=r"Flatten #0.*float32.*got float64"):
        model.forward(x.astype(np.float64))
    with pytest.raises(ShapeError, match=r"Linear #1( \+ ReLU #2)?: expected input of shape "
                                         r"\(N, 784\), got \(4, 783\)"):
        model.forward(np.zeros((4, 783), np.float32))
    with pytest.raises(ShapeError, match="empty batch"):
        model.forward(x[:0])
    x[1, 0, 3, 3] = np.nan
    with pytest.raises(NonFiniteError, match="Flatten #0: input holds NaN"):
        model.forward(x)
    with pytest.raises(ShapeError, match=r"Linear #1 expects per-sample input \(784\) but receives \(900,\)"):
        model.output_shape((1, 30, 30))


def test_backward_shape_is_checked():
    layer = Linear(3, 2)
    layer.forward(np.zeros((4, 3), np.float32))
    with pytest.raises(ShapeError, match="expected dl_dy of shape"):
        layer.backward(np.zeros((4, 3), np.float32))


dtypes = st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8,
                          np.complex64, np.bool_])
shapes = st.lists(st.integers(0, 9), min_size=0, max_size=4).map(tuple)


@settings(max_examples=150, deadline=None)
@given(shape=shapes, dtype=dtypes, non_contiguous=st.booleans())
def test_fuzz_bad_inputs_raise_clear_errors_never_crash(shape, dtype, non_contiguous):
    """Anything that is not a valid batch is refused before a kernel sees it;
    whatever is accepted gives finite output of the right shape."""
    model = nnumba.Sequential(Linear(6, 5), Tanh(), Linear(5, 2), seed=0)
    x = np.ones(shape, dtype=dtype)
    if non_contiguous and x.ndim >= 1 and x.shape[-1] > 1:
        x = x[..., ::2]
    try:
        y = model.forward(x)
    except (ShapeError, DTypeError, NonFiniteError) as exc:
        assert "#" in str(exc)  # names the layer and its index
        return
    assert x.shape[1:] == (6,) and x.dtype == np.float32 and x.shape[0] >= 1
    assert y.shape == (x.shape[0], 2) and np.isfinite(y).all()


def test_non_contiguous_input_gives_the_same_result():
    layer = Linear(3, 2)
    x = rng.normal(size=(6, 6)).astype(np.float32)
    strided = x[::2, ::2]
    np.testing.assert_allclose(layer.forward(strided), layer.forward(np.ascontiguousarray(strided)),
                               rtol=1e-6)


def test_an_output_too_large_for_memory_is_a_too_large_error_naming_the_layer():
    from nnumba.errors import TooLargeError
    layer = Linear(1, 10**6)
    x = np.ones((10**5, 1), np.float32)  # the output would need 400 GB
    with pytest.raises(TooLargeError, match=r"Linear: its 'y' array of shape \(100000, 1000000\)"
                                            r" needs 400.0 GB"):
        layer.forward(x)


@pytest.mark.parametrize("value, got", [(np.float32(3), "a float32 scalar"), ([[1.0]], "a list")])
def test_an_input_that_is_no_array_says_what_it_is(value, got):
    with pytest.raises(DTypeError, match=f"expected input as a numpy array of float32, got {got}$"):
        Linear(1, 2).forward(value)
