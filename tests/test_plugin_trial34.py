"""Plugin trial 34: an outside author's LayerNorm, BatchNorm1d and multi-margin loss,
written from the docs alone.  (The MPI state finding is in tests/test_mpi.py.)"""
import numpy as np
import pytest

from nnumba import Layer
from nnumba.errors import ContractError, ShapeError


def _layer_with(start):
    class Holder(Layer):
        def __init__(self):
            super().__init__()
            self.p = self.add_param("p", start, trainable=False)
    return Holder


@pytest.mark.parametrize("start", [np.zeros(2, np.int64), np.array([True]), np.array([1 + 2j]),
                                   None, "abc", [0.5, 0.25], (2.7,), (-1, 2), ((2,),), (True,)])
def test_add_param_refuses_what_is_neither_a_shape_nor_a_float_start(start):
    """An int64 counter became float32 and stopped counting at 2**24; [0.5, 0.25] was the
    shape (0, 0), (2.7,) the shape (2,), None one NaN, all silently; 'abc' and (-1, 2)
    were numpy's bare ValueError."""
    with pytest.raises(ContractError, match="add_param"):
        _layer_with(start)()


@pytest.mark.parametrize("start, shape", [((2, 3), (2, 3)), ([4], (4,)), ((np.int64(3),), (3,)),
                                          (np.arange(3.0), (3,)), (np.zeros(2, ">f8"), (2,))])
def test_add_param_takes_integer_shapes_and_float_starts(start, shape):
    p = _layer_with(start)().p
    assert p.value.shape == shape and p.value.dtype == np.float32
    if isinstance(start, np.ndarray):
        np.testing.assert_array_equal(p.value, start.astype(np.float32))


class _LastAxis(Layer):
    """A last-axis layer (a LayerNorm without its statistics) that says its shape with
    ``declared``."""
    declared = None

    def __init__(self, features: int = 4):
        super().__init__()
        self.features = features

    def input_shape(self):
        return self.declared

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        y[...] = x
        return y


@pytest.mark.parametrize("declared", [(..., 4), (2, ..., 4), 4, "4", (4.5,), (-1,)])
def test_a_malformed_input_shape_is_a_contract_error_naming_it(declared):
    """(..., D) was taken at construction, then every input was refused with "expected
    input of shape (N, ..., 4), got (2, 3, 4)"; 4 was a bare TypeError."""
    layer = type("Declared", (_LastAxis,), {"declared": declared})()
    with pytest.raises(ContractError, match=r"input_shape\(\) returned"):
        layer.forward(np.ones((2, 3, 4), np.float32))


@pytest.mark.parametrize("declared, shape", [((None, 4), (2, 3, 4)), ([3, 4], (2, 3, 4)),
                                             ((3, ...), (2, 3, 4)), ((3, ...), (2, 3))])
def test_a_well_formed_input_shape_still_fits_or_refuses_with_a_shape_error(declared, shape):
    layer = type("Declared", (_LastAxis,), {"declared": declared})()
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    np.testing.assert_array_equal(layer.forward(x), x)
    from nnumba.errors import ShapeError
    with pytest.raises(ShapeError):
        layer.forward(np.ones((2, 5, 5), np.float32))


class _Norm(Layer):
    """Each sample's values over the last axis standardised (a LayerNorm without its
    gain and bias, numpy body), written for its width ``features``: input_shape() None,
    and no check of the last axis."""
    examples = [({"features": 4}, (3, 4)), ({"features": 5}, (2, 3, 5))]
    devices = ("cpu",)
    kept_for_backward = ("_xhat", "_rstd")

    def __init__(self, features: int):
        super().__init__()
        self.features = features

    def _forward(self, x):
        rows = x.reshape(x.size // self.features, self.features)  # no width check
        mu = rows.mean(1, keepdims=True)
        self._rstd = 1 / np.sqrt(((rows - mu) ** 2).mean(1, keepdims=True) + 1e-5)
        self._xhat = (rows - mu) * self._rstd
        y = self._buffer("y", x.shape)
        y.reshape(rows.shape)[...] = self._xhat
        return y

    def _backward(self, dl_dy):
        g, h = dl_dy.reshape(self._xhat.shape), self._xhat
        dx = self._buffer("dx", dl_dy.shape)
        dx.reshape(g.shape)[...] = self._rstd * (g - g.mean(1, keepdims=True)
                                                 - h * (g * h).mean(1, keepdims=True))
        return dx


class _CheckedNorm(_Norm):
    def output_shape(self, input_shape):
        if not input_shape or input_shape[-1] != self.features:
            raise ShapeError(f"{self.label}: expected a last axis of {self.features}, got "
                             f"{tuple(input_shape)}")
        return tuple(input_shape)


def test_the_kit_refuses_an_any_shape_layer_that_fails_another_width_with_a_bare_error():
    """At width 2 the unchecked layer standardises across samples (silent garbage: the
    reference is each row standardised on its own); at the kit's size-1 width numpy's
    bare ValueError, which the kit took for 'does not take this size' and passed it."""
    from nnumba import testing
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    row = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    assert not np.allclose(_Norm(4).astype("float64").forward(x), row)
    np.testing.assert_allclose(_Norm(2).astype("float64").forward(x), row)
    testing.check_all(_CheckedNorm)
    with pytest.raises(testing.ConformanceError, match="ShapeError in output_shape"):
        testing.check_all(_Norm)


def test_the_loss_kit_refuses_a_loss_that_clips_large_predictions_in_place():
    """A 'stability' clip of y_hat to +-5 in place passed: the kit compared y_hat before
    and after only at the examples' scale, where nothing exceeds 5."""
    from nnumba import testing
    from nnumba.losses import MSE

    class ClippingMSE(MSE):
        def _compute(self, y_hat, y, scale):
            out = super()._compute(y_hat, y, scale)
            np.clip(y_hat, -5, 5, out=y_hat)
            return out
    z = np.array([[10.0, -20.0]])
    ClippingMSE().forward(z, np.zeros((1, 2)))
    np.testing.assert_array_equal(z, [[5.0, -5.0]])  # it writes into the predictions
    testing.check_loss(MSE)
    with pytest.raises(testing.ConformanceError, match="in place"):
        testing.check_loss(ClippingMSE)
