"""Review 45 (of this sitting's later changes): the kit's check_read_only passes a
correct layer of a model (it blamed _forward for the container flag its model set) and
still names a flag a layer the kit built sets itself; a @dataclass layer, whose fields
no spec records, is refused clearly (the generated constructor took dataclass's place);
nnumba.io.__all__ names rebuild again.  (Copying a deep model: test_fuzz_round56.)"""
import dataclasses

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from test_plugin_trial49 import SetsReuseBuffers49


@pytest.mark.parametrize("name", ["Tanh", "ReLU", "Linear"])
def test_check_read_only_passes_a_correct_builtin_layer_that_belongs_to_a_model(name):
    """testing.check_read_only is public.  Since plugin trial 49 it compared the
    container flags with a lone layer's, so a built-in layer inside a model failed with
    '_forward set container, a flag its model sets on it', which _forward never did.
    Reference: the layer's own flags before and after are the same objects."""
    first = {"type": "Linear", "in_features": 4, "out_features": 3}
    second = {"type": name} if name != "Linear" else \
        {"type": "Linear", "in_features": 3, "out_features": 2}
    model = nnumba.build([first, second], seed=0).astype(np.float64)
    layer = model.layers[1]
    x = np.random.default_rng(0).standard_normal((2, 3))
    before = {k: getattr(layer, k) for k in ("container", "reuse_buffers")}
    testing.check_read_only(layer, x, np.random.default_rng(0))  # was a ConformanceError
    assert all(getattr(layer, k) is v for k, v in before.items())


def test_a_dataclass_layer_is_refused_clearly():
    """Review 44 put a generated no-argument __init__ into every Layer subclass without
    one, before @dataclass runs: Scale45(k=3.0) got 'unexpected keyword argument'.  With
    dataclass's own __init__ it built, but its fields were never recorded: its spec lost
    k, and a saved model came back with k = 2 silently (review 46).  So it is refused,
    naming what to do; a plain __init__ records k (closed form 3 x after a round trip)."""
    @dataclasses.dataclass(eq=False)
    class Scale45(Layer):
        k: float = 2.0

        def __post_init__(self):
            Layer.__init__(self)

    with pytest.raises(nnumba.errors.ContractError,
                       match=r"Scale45 is a @dataclass.*an __init__ that calls "
                             r"super\(\)\.__init__\(\)"):
        Scale45(k=3.0)

    class Plain45(Layer):
        def __init__(self, k: float = 2.0):
            super().__init__()
            self.k = k

        def _forward(self, x):
            y = self._buffer("y", x.shape)
            y[...] = self.k * x
            return y

    assert Plain45(k=3.0).spec() == {"type": "Plain45", "k": 3.0}
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(Plain45(**Plain45(k=3.0).config()).forward(x), 3 * x)


def test_io_all_still_names_rebuild():
    """Review 44 meant to add check_save_path to nnumba.io.__all__ but replaced rebuild."""
    import nnumba.io as io
    assert callable(io.rebuild)
    assert {"rebuild", "check_save_path"} <= set(io.__all__)


def test_the_kit_still_names_a_flag_a_layer_it_built_sets():
    with pytest.raises(testing.ConformanceError, match="_forward set reuse_buffers"):
        testing.check_all(SetsReuseBuffers49)  # (trial 49's layer)
