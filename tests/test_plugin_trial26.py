"""Plugin trial 26: a layer whose inputs are token ids (an embedding) says what it takes
with example_input, and the kits test it on those; integer data beyond float32's exact
range is refused; the input-gradient failure gives no parameter advice."""
import numpy as np
import pytest

import nnumba
from nnumba import Layer, hookimpl, testing
from nnumba.data.arrays import DataFileError
from nnumba.errors import NnumbaError


class IdError(NnumbaError, ValueError):
    pass


class Embedding26(Layer):
    """Ids (N, T) as floats, rounded, to (N, T, E); an id outside [0, V) is refused."""
    examples = [({"num_embeddings": 5, "dim": 3}, (2, 4))]
    devices = ("cpu",)

    def __init__(self, num_embeddings: int, dim: int):
        super().__init__()
        self.num_embeddings, self.dim = num_embeddings, dim
        self.weight = self.add_param("weight", (num_embeddings, dim))

    def reset_parameters(self, rng):
        self.weight.value[...] = rng.normal(size=self.weight.value.shape)

    def input_shape(self):
        return (None,)

    def output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def example_input(self, shape, rng):
        return rng.integers(0, self.num_embeddings, size=shape).astype(np.float64)

    def _ids(self, x):
        ids = np.floor(x + 0.5).astype(np.int64)
        if ((ids < 0) | (ids >= self.num_embeddings)).any():
            raise IdError(f"{self.label}: token ids must round into [0, {self.num_embeddings})")
        return ids

    def _forward(self, x):
        y = self._buffer("y", (*x.shape, self.dim))
        y[...] = self.weight.value[self._ids(x)]
        self._x = x
        return y

    def _backward(self, dl_dy):
        np.add.at(self.weight.grad, self._ids(self._x).reshape(-1), dl_dy.reshape(-1, self.dim))
        return self._buffer("dx", self._x.shape, zero=True) if self.needs_input_grad else None


class NoExamples26(Embedding26):
    example_input = Layer.example_input  # the default float draws


class WrongShape26(Embedding26):
    def example_input(self, shape, rng):
        return super().example_input(shape, rng)[:1]


class RowOff26(Embedding26):
    """A planted bug: the gradient goes into the next row."""
    def _backward(self, dl_dy):
        ids = (self._ids(self._x).reshape(-1) + 1) % self.num_embeddings
        np.add.at(self.weight.grad, ids, dl_dy.reshape(-1, self.dim))
        return self._buffer("dx", self._x.shape, zero=True) if self.needs_input_grad else None


def test_the_embedding_is_torchs():
    torch = pytest.importorskip("torch")
    layer = Embedding26(num_embeddings=5, dim=3).astype(np.float64)
    ids = np.random.default_rng(1).integers(0, 5, (2, 4))
    g = np.random.default_rng(2).normal(size=(2, 4, 3))
    y = layer.forward(ids.astype(np.float64))
    layer.zero_grad()
    layer.backward(g)
    w = torch.tensor(layer.weight.value.copy(), requires_grad=True)
    out = torch.nn.functional.embedding(torch.tensor(ids), w)
    (out * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, w.grad.numpy(), rtol=1e-12)


def test_check_all_tests_a_layer_of_ids_on_its_own_example_inputs():
    testing.check_all(Embedding26)


def test_without_example_input_the_kit_says_to_define_it():
    with pytest.raises(testing.ConformanceError, match="example_input"):
        testing.check_all(NoExamples26)


def test_an_example_input_of_the_wrong_shape_is_named():
    with pytest.raises(testing.ConformanceError, match=r"example_input\(2, 4\) returned"):
        testing.check_all(WrongShape26)


def test_a_wrong_row_gradient_still_fails_on_the_layers_own_inputs():
    with pytest.raises(testing.ConformanceError, match="weight"):
        testing.check_all(RowOff26)


class _Plugin:
    @staticmethod
    @hookimpl
    def nnumba_register_layers():
        return {"Embedding26t": Embedding26}

    @staticmethod
    @hookimpl
    def nnumba_register_models():
        def bag26t(inputs: int = 4, classes: int = 3):
            """Embedding, flatten, Linear."""
            return [{"type": "Embedding26t", "num_embeddings": 5, "dim": 2},
                    {"type": "Flatten"},
                    {"type": "Linear", "in_features": 2 * inputs, "out_features": classes}]
        return {"bag26t": nnumba.models.NamedModel(bag26t, input_shape=lambda inputs=4, **o:
                                                   (inputs,))}


def test_check_model_feeds_a_model_its_first_layers_example_inputs():
    nnumba.register_plugin(_Plugin, "trial26t")
    try:
        testing.check_model("bag26t")
    finally:
        nnumba.unregister_plugin("trial26t")


class StraightThrough26(Layer):
    """y = round(x) with the straight-through gradient dx = dy: not the true one (0)."""
    examples = [({}, (3, 4))]
    devices = ("cpu",)

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        y[...] = np.floor(x + 0.5)
        return y

    def _backward(self, dl_dy):
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy
        return dx


def test_the_input_gradient_failure_gives_no_parameter_advice():
    with pytest.raises(testing.ConformanceError) as info:
        testing.check_all(StraightThrough26)
    message = str(info.value)
    assert "gradient for input" in message and "does not change with the input" in message
    assert "param.value" not in message


def test_integer_inputs_float32_cannot_hold_exactly_are_refused(tmp_path):
    x = np.array([[2 ** 24 + 1, 3], [1, 2 ** 24]] * 10, dtype=np.int64)
    assert np.float32(x[0, 0]) == np.float32(x[1, 1])  # float32 merges them
    np.savez(tmp_path / "ids.npz", x_train=x, y_train=np.arange(20) % 2)
    with pytest.raises(DataFileError, match=r"beyond \+-2\*\*24.*16,777,217"):
        nnumba.data.load_arrays(tmp_path / "ids.npz")
    small = np.array([[2 ** 24, -2 ** 24], [1, 2]] * 10, dtype=np.int64)  # exact: kept
    np.savez(tmp_path / "ok.npz", x_train=small, y_train=np.arange(20) % 2)
    data = nnumba.data.load_arrays(tmp_path / "ok.npz")
    got = np.concatenate([data.x_train, data.x_test]).astype(np.int64)
    assert np.array_equal(np.sort(got, axis=None), np.sort(small, axis=None))
