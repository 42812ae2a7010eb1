"""Fuzz round 55 (every registered layer, generated arguments and inputs): a model in
which no step needs a gradient checks the one backward() gets all the same; a seeded
Dropout drops the same units in a float64 model as in a float32 one; a layer without
an __init__ of its own names itself for an argument it does not take; a layer without
a gradient anywhere but last gets advice that fits any such layer."""
import inspect

import numpy as np
import pytest

import nnumba
from nnumba import errors, registry
from nnumba.layers import Dropout

BAD_GRADS = {
    "wrong_shape": lambda y: np.ones((y.shape[0], y.shape[1] - 1), np.float32),
    "wrong_batch": lambda y: np.ones((y.shape[0] + 2,) + y.shape[1:], np.float32),
    "none": lambda y: None,
    "list": lambda y: y.tolist(),
    "int64": lambda y: np.ones(y.shape, np.int64),
    "zero_d": lambda y: np.array(1.0, np.float32),
}


@pytest.mark.parametrize("layers", [["ReLU"], ["Flatten"], ["ReLU", "Sigmoid"]])
@pytest.mark.parametrize("bad", sorted(BAD_GRADS))
def test_backward_checks_the_gradient_where_no_step_needs_one(layers, bad):
    """With input_grad set the same gradients were refused; without it, a model of
    parameter-free layers returned None for anything: a loss's bug went unseen."""
    model = nnumba.Sequential([registry.get_layer(n)() for n in layers])
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    y = model.forward(x)
    with pytest.raises(errors.NnumbaError):
        model.backward(BAD_GRADS[bad](y))
    assert model.backward(np.ones_like(y)) is None  # a right one: nothing wants dl/dx
    model.input_grad = True
    model.forward(x)
    with pytest.raises(errors.NnumbaError):  # as before
        model.backward(BAD_GRADS[bad](y))


@pytest.mark.parametrize("resample", [True, False])
def test_a_seeded_dropout_drops_the_same_units_in_either_dtype(resample):
    """The resampled mask was drawn in the model's dtype: astype(np.float64), as for a
    gradient check, dropped other units.  Reference: the survivors are scaled by
    1/(1-p) exactly, and the zeros sit in the same places."""
    x = np.ones((6, 50))
    out = [nnumba.Sequential(Dropout(p=0.4, seed=1, resample=resample)).astype(dt).forward(
        x.astype(dt)) for dt in (np.float32, np.float64)]
    np.testing.assert_array_equal(out[0] == 0, out[1] == 0)
    for y in out:
        assert 0 < (y == 0).mean() < 1
        np.testing.assert_allclose(y[y != 0], 1 / 0.6, rtol=1e-6)


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid", "Tanh", "Identity", "Flatten"])
def test_an_argument_a_layer_does_not_take_names_the_layer(name):
    """ReLU(inplace=True), a PyTorch habit, said 'Layer.__init__() got an unexpected
    keyword argument', naming no layer."""
    cls = registry.get_layer(name)
    with pytest.raises(TypeError, match=rf"^{name}\.__init__\(\) got an unexpected keyword "
                                        rf"argument 'inplace'"):
        cls(inplace=True)
    with pytest.raises(TypeError, match=rf"^{name}\.__init__\(\) takes 1 positional"):
        cls(3)
    assert cls().spec() == {"type": name} and str(inspect.signature(cls)) == "()"
    sub = type("Sub55", (cls,), {})  # a subclass without an __init__ names itself
    with pytest.raises(TypeError, match=r"^Sub55\.__init__\(\) got an unexpected"):
        sub(inplace=True)


def test_arguments_passed_to_super_init_are_blamed_on_that_call():
    """(review 44) The layer's own __init__ takes them; Layer.__init__ does not."""
    class Scale55(nnumba.Layer):
        def __init__(self, factor: float = 2.0):
            super().__init__(factor)
    with pytest.raises(TypeError, match=r"^Layer\.__init__\(\) takes 1 positional"):
        Scale55(3.0)


def test_no_gradient_before_the_last_step_gives_advice_that_fits():
    """A layer without a gradient (a fixed feature extractor such as nnumba-features'
    HOG, or the threshold unit) not last in the model: its message said 'its output is
    piecewise constant: train it with the perceptron trainer', wrong for HOG."""
    model = nnumba.Sequential(registry.get_layer("Threshold")(), registry.get_layer("ReLU")())
    model.input_grad = True
    y = model.forward(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    with pytest.raises(errors.NoGradientError) as info:
        model.backward(np.ones_like(y))
    text = str(info.value)
    assert "piecewise constant" not in text
    assert text.startswith("Threshold #0 has no gradient") and "first in the model" in text
