"""Plugin trial 34: an outside author's LayerNorm, BatchNorm1d and multi-margin loss,
written from the docs alone.  (The MPI state finding is in tests/test_mpi.py.)"""
import numpy as np
import pytest

from nnumba import Layer
from nnumba.errors import ContractError


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
