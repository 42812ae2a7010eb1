"""Plugin trial 15: a per-channel PReLU plugin written from the docs alone.  Its
author found the layer kit's save/load failure silent on the usual cause, a
parameter's array kept from reset_parameters, which a model's parameter buffers
leave behind (training then changes nothing the layer reads)."""
import numpy as np
import pytest
from scale_layer import _Scale, _variant

import nnumba
from nnumba import testing


def _stale_reset(self, rng):
    _Scale.reset_parameters(self, rng)
    self._a = self.a.value  # kept: the model rebinds a.value into its flat buffer


def _stale_forward(self, x):
    self._x = x
    y = self._buffer("y", x.shape)
    np.multiply(x, self._a[0], out=y)
    return y


Stale = _variant("Stale", reset_parameters=_stale_reset, _forward=_stale_forward)


def test_a_layer_that_keeps_a_parameter_array_fails_the_kit_naming_the_cause():
    with pytest.raises(testing.ConformanceError,
                       match=r"Stale: outputs differ after a save/load round trip: .*"
                             r"param\.value read at each call"):
        testing.check_all(Stale)


def test_the_same_layer_in_a_model_trains_without_changing_what_it_computes():
    # What the message warns of, on nnumba's own model: the kept array is not the
    # parameter any more once the model holds it.
    model = nnumba.Sequential(nnumba.get_layer("Linear")(4, 3), Stale())
    stale = model.layers[1]
    assert not np.shares_memory(stale._a, stale.a.value)
    x = np.random.default_rng(0).random((5, 4), dtype=np.float32)
    stale.a.value[...] = 2.0
    y = model.forward(x)
    np.testing.assert_allclose(y, model.layers[0].forward(x) * stale._a[0], rtol=1e-6)
    assert stale._a[0] != 2.0
