"""Plugin trial 30 (a dropout and a residual block written from the docs alone): a
layer whose generator one seed does not fix (seeded from fresh entropy, not from
reset_parameters' rng) passed check_all and check_model, and a plugin's dropout drew the
same masks on every MPI rank (tests/test_mpi.py)."""
import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.layers.validation import integer, number
from nnumba.models import NamedModel


class Drop30(Layer):
    """Inverted dropout written as docs/plugins.md says: a generator of its own,
    returned by random_generator(), seeded by ``seed`` or by reset_parameters' rng;
    the mask drawn on the host and multiplied in with the kernel set."""
    examples = [({"p": 0.5, "seed": 3}, (4, 5)), ({"p": 0.2}, (3, 2, 4))]
    kept_for_backward = ("_mask",)

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__()
        self.p = number("Drop30", "p", p, 0, 0.99)
        self.seed = None if seed is None else integer("Drop30", "seed", seed, minimum=0)
        self._rng = np.random.default_rng(self.seed)

    def reset_parameters(self, rng):
        if self.seed is None:
            self._rng = np.random.default_rng(rng.integers(2**63))

    def random_generator(self):
        return self._rng

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        if not self.training:
            self._mask = None
            self.kernels.scale(x.reshape(x.size), 1, y.reshape(y.size))
            return y
        keep = self._rng.random(x.shape) >= self.p
        self._mask = self.device.to_device((keep / (1 - self.p)).astype(x.dtype))
        self.kernels.multiply(x.reshape(x.size), self._mask.reshape(x.size), y.reshape(y.size))
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        n = dl_dy.size
        dx = self._buffer("dx", dl_dy.shape)
        if self._mask is None:
            self.kernels.scale(dl_dy.reshape(n), 1, dx.reshape(n))
        else:
            self.kernels.multiply(dl_dy.reshape(n), self._mask.reshape(n), dx.reshape(n))
        return dx


class EntropyDrop30(Drop30):
    """The natural first draft: seed=None means a generator from fresh entropy
    (np.random.default_rng(None) in __init__), never reseeded from the rng
    reset_parameters is given."""

    def reset_parameters(self, rng):
        pass


def _two_seeded_training_forwards(cls):
    """The training outputs of two models built from one seed (independent of the kit)."""
    x = np.ones((8, 6), np.float32)
    outs = []
    for _ in range(2):
        model = nnumba.Sequential(nnumba.get_layer("Linear")(6, 6), cls(0.5), seed=0)
        model.train()
        outs.append(np.array(model.forward(x)))
    return outs


def test_the_kit_refuses_a_draw_layer_whose_generator_one_seed_does_not_fix():
    """A random layer seeded from fresh entropy (not from reset_parameters' rng) makes
    `Sequential(..., seed=0)` / `nnumba.build(seed=0)` / `nnumba train --seed` runs
    irreproducible (README: 'the same seed gives bit-identical weights'), yet passes
    check_all and check_model: check_seeded (nnumba/testing/layers.py:120-129) and
    check_model (nnumba/testing/models.py:46) compare parameter values only, never the
    generator random_generator() returns."""
    testing.check_all(Drop30)                              # the correct layer passes
    a, b = _two_seeded_training_forwards(Drop30)
    np.testing.assert_array_equal(a, b)                    # and is one run per seed
    a, b = _two_seeded_training_forwards(EntropyDrop30)
    assert not np.array_equal(a, b)                        # the mutant: two runs of one seed differ
    with pytest.raises(testing.ConformanceError):
        testing.check_all(EntropyDrop30)


def test_check_model_refuses_a_model_whose_seeded_builds_draw_differently():
    """Same cause, through check_model ('two builds from one seed are equal'): the two
    builds hold equal parameters but their dropout layers draw different masks."""

    class Plug:
        @staticmethod
        @nnumba.hookimpl
        def nnumba_register_layers():
            return {"EntropyDrop30": EntropyDrop30}

        @staticmethod
        @nnumba.hookimpl
        def nnumba_register_models():
            return {"entropy30": NamedModel(
                lambda inputs=3, classes=2: [
                    {"type": "Linear", "in_features": inputs, "out_features": 8},
                    {"type": "EntropyDrop30", "p": 0.5},
                    {"type": "Linear", "in_features": 8, "out_features": classes}],
                input_shape=lambda inputs=3, **o: (inputs,))}

    nnumba.register_plugin(Plug, "entropy30plugin")
    try:
        x = np.ones((5, 3), np.float32)
        m1, m2 = nnumba.build("entropy30", seed=0), nnumba.build("entropy30", seed=0)
        assert np.array_equal(m1.flat_params, m2.flat_params)
        assert not np.array_equal(m1.forward(x), m2.forward(x))   # other masks, one seed
        with pytest.raises(testing.ConformanceError):
            testing.check_model("entropy30")
    finally:
        nnumba.unregister_plugin("entropy30plugin")


@pytest.mark.parametrize("value, ok", [(0.0, True), (0.999, True), (1.0, False), (1.5, False),
                                       (-0.1, False)])
def test_number_takes_a_strict_upper_bound(value, ok):
    """A dropout's p must be < 1 (the scale 1/(1-p)); number() had a strict lower bound
    only, so a plugin wrote that error by hand."""
    from nnumba.errors import SpecError
    if ok:
        assert number("Drop30", "p", value, 0, 1, below=1) == value
    else:
        with pytest.raises(SpecError, match=r"Drop30: p must be a finite number < 1 and >= 0, "
                                            r"got"):
            number("Drop30", "p", value, 0, 1, below=1)
