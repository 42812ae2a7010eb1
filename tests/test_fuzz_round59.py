"""Fuzz round 59 (the surfaces changed this sitting): the kit's check_read_only passes a
correct float32 layer (it drew the upstream gradient in float64, which the layer
refused: 'expected dl_dy of dtype float32, got float64').  Reference: the same layer
in float64 passes, and the kit still catches a layer that writes into its input."""
import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing


@pytest.mark.parametrize("name, kwargs, shape", [
    ("Linear", {"in_features": 3, "out_features": 2}, (4, 3)), ("ReLU", {}, (4, 3)),
    ("Conv2d", {"in_channels": 1, "out_channels": 2, "kernel_size": 3}, (2, 1, 5, 5))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_read_only_passes_a_correct_layer_of_either_dtype(name, kwargs, shape, dtype):
    layer = nnumba.get_layer(name)(**kwargs).astype(dtype)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    testing.check_read_only(layer, x, np.random.default_rng(1), alone=True)


class WritesIntoItsInput59(Layer):
    def _forward(self, x):
        x[...] = 0
        return self._buffer("y", x.shape)

    def _backward(self, dl_dy):
        return dl_dy


def test_check_read_only_still_catches_a_float32_layer_writing_into_its_input():
    with pytest.raises(testing.ConformanceError, match="_forward wrote into its input x"):
        testing.check_read_only(WritesIntoItsInput59(), np.ones((2, 3), np.float32),
                                np.random.default_rng(0))
