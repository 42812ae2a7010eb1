"""Plugin trial 29 (written from the docs alone: an embedding of single ids, a clip with
a narrow example_input, a focal loss): a model whose samples are single numbers (per-sample
shape ()) is saved and summarised; the kit checks the gradient at
the inputs past a narrow example_input that the layer takes."""
import numpy as np
import pytest

import nnumba
from nnumba import Layer, hookimpl, testing
from nnumba.errors import NnumbaError
from nnumba.models import NamedModel


class IdError29(NnumbaError, ValueError):
    pass


class Ids29(Layer):
    """Ids (N,) as floats to rows (N, E) of a table; numpy only."""
    examples = [({"num": 6, "dim": 3}, (5,))]
    devices = ("cpu",)

    def __init__(self, num: int, dim: int):
        super().__init__()
        self.num, self.dim = num, dim
        self.weight = self.add_param("weight", (num, dim))

    def reset_parameters(self, rng):
        self.weight.value[...] = rng.normal(size=self.weight.value.shape)

    def input_shape(self):
        return ()

    def output_shape(self, input_shape):
        return (self.dim,)

    def example_input(self, shape, rng):
        return rng.integers(0, self.num, size=shape).astype(np.float64)

    def invalid_input(self, shape, rng):
        x = self.example_input(shape, rng)
        x.flat[0] = rng.choice([-1, self.num])
        return x

    def _ids(self, x):
        ids = np.floor(x + 0.5).astype(np.int64)
        if ((ids < 0) | (ids >= self.num)).any():
            raise IdError29(f"{self.label}: ids must lie in [0, {self.num})")
        return ids

    def _forward(self, x):
        y = self._buffer("y", (len(x), self.dim))
        y[...] = self.weight.value[self._ids(x)]
        self._x = x
        return y

    def _backward(self, dl_dy):
        np.add.at(self.weight.grad, self._ids(self._x), dl_dy)
        return self._buffer("dx", self._x.shape, zero=True) if self.needs_input_grad else None


class _Plugin:
    @staticmethod
    @hookimpl
    def nnumba_register_layers():
        return {"Ids29t": Ids29}

    @staticmethod
    @hookimpl
    def nnumba_register_models():
        def ids29t():
            """An id's row, then a Linear."""
            return [{"type": "Ids29t", "num": 6, "dim": 4}, {"type": "Flatten"},
                    {"type": "Linear", "in_features": 4, "out_features": 2}]
        return {"ids29t": NamedModel(ids29t, ())}


@pytest.fixture
def plugin():
    nnumba.register_plugin(_Plugin, "trial29t")
    yield
    nnumba.unregister_plugin("trial29t")


def test_a_model_of_single_ids_is_saved_with_its_empty_sample_shape(plugin, tmp_path):
    model = nnumba.build("ids29t", seed=0)
    x = np.array([0, 3, 5, 1], dtype=np.float32)
    path = nnumba.save(model, tmp_path / "m.npz", input_shape=())
    assert tuple(nnumba.io.stored_info(path)["input_shape"]) == ()
    np.testing.assert_array_equal(nnumba.load_model(path).forward(x), model.forward(x))


def test_summary_takes_a_model_of_single_ids(plugin):
    from nnumba.summary import summarize
    text = str(summarize("ids29t"))
    assert "Linear" in text and "Ids29" in text


class Clip29(Layer):
    """clip(x, -1, 1); its example_input draws inside [-1, 1], it takes any float."""
    examples = [({}, (3, 4))]
    devices = ("cpu",)

    def example_input(self, shape, rng):
        return rng.uniform(-0.9, 0.9, size=shape)

    def _forward(self, x):
        self._x = x
        y = self._buffer("y", x.shape)
        y[...] = np.clip(x, -1, 1)
        return y

    def _backward(self, dl_dy):
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy * (np.abs(self._x) < 1)
        return dx


class ClipLeaks29(Clip29):
    """A planted bug: the gradient passes outside [-1, 1] too."""
    def _backward(self, dl_dy):
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy
        return dx


def test_the_kit_checks_the_gradient_past_a_narrow_example_input():
    testing.check_all(Clip29)  # right: it passes
    with pytest.raises(testing.ConformanceError, match="gradient for input"):
        testing.check_all(ClipLeaks29)
