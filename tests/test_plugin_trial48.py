"""Plugin trial 48 (a layer with two parameters of different shapes, a loss with an
option, a model, a data set and a device in one plugin): a model saved with
``nnumba.save(model, path)`` (no input_shape, the README's call), or a spec file,
trains on data of another layout with the rows reshaped to the shape its first layer
fixes, as ``nnumba summary`` shows it; before, train refused what summary described."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnumba
from nnumba import Layer, ShapeError
from nnumba.layers import Flatten, Linear
from nnumba.layers.validation import integer
from nnumba.models.fitting import model_for_data


def _nnumba(*args):
    return subprocess.run([sys.executable, "-m", "nnumba", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NUMBA_NUM_THREADS": "1"})


def test_a_model_saved_without_its_input_shape_trains_on_reshaped(tmp_path):
    model = nnumba.Sequential(Linear(784, 10), seed=0)
    path = nnumba.save(model, tmp_path / "without.npz")  # the README's call
    assert nnumba.io.stored_info(path)["input_shape"] is None
    assert "input (784,)" in _nnumba("summary", path).stdout
    run = _nnumba("train", "--model", path, "--epochs", "1", "--train-size", "200",
                  "--test-size", "50", "--save", tmp_path / "on.npz")
    assert run.returncode == 0, run.stderr
    assert "inputs reshaped from (1, 28, 28) to (784,)" in run.stdout
    # it trained on from the saved weights (no new seed): the same model, other values
    before, after = nnumba.load_model(path), nnumba.load_model(tmp_path / "on.npz")
    assert before.spec() == after.spec()
    assert not np.array_equal(before.flat_params, after.flat_params)


class Affine48(Layer):
    """y = s[c] x + b[c, h, w] on (N, C, H, W): it fixes the whole sample shape."""

    examples = [({"channels": 2, "height": 1, "width": 1}, (3, 2, 1, 1))]

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.channels = integer("Affine48", "channels", channels)
        self.height = integer("Affine48", "height", height)
        self.width = integer("Affine48", "width", width)
        self.s = self.add_param("s", (self.channels,))
        self.b = self.add_param("b", (self.channels, self.height, self.width))

    def input_shape(self):
        return (self.channels, self.height, self.width)

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        y[...] = x * self.s.value[None, :, None, None] + self.b.value[None]
        self._x = x
        return y

    def _backward(self, dl_dy):
        self.s.grad[...] += (dl_dy * self._x).sum(axis=(0, 2, 3))
        self.b.grad[...] += dl_dy.sum(axis=0)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy * self.s.value[None, :, None, None]
        return dx


def test_layers_take_rows_of_the_shape_their_first_layer_fixes():
    layers = [Affine48(2, 1, 1), Flatten(), Linear(2, 3)]
    net, shape = model_for_data(layers, (2,), 3)
    assert shape == (2, 1, 1)  # what the estimators and train then reshape the rows to
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    s, b = net.layers[0].s.value, net.layers[0].b.value
    w, c = net.layers[2].weight.value, net.layers[2].bias.value
    np.testing.assert_allclose(net.predict(x.reshape((-1,) + shape)),
                               (x * s + b.reshape(2)) @ w.T + c, rtol=1e-6)
    # no shape of as many values: the layer's own message, as before
    with pytest.raises(ShapeError, match="expects per-sample input"):
        model_for_data(layers, (3,), 3)
    # a first layer that leaves sizes open fixes nothing: refused as before
    with pytest.raises(ShapeError, match="expects per-sample input"):
        model_for_data([{"type": "Conv2d", "in_channels": 1, "out_channels": 2,
                         "kernel_size": 3}, {"type": "Flatten"}], (64,))
