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
