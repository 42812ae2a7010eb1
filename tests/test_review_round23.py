"""Review round 23 (of the kit, classify and resume changes of round 22): no false
kept-input warning for a parameter in the output, copies of the input found in other
layouts, a 16-bit PNG's transparent gray over white, the other-trainer note naming the
loss options it applies, a Dropout subclass's p.  References: the pickle's own bytes,
the PNG tRNS rule, the saved run's own record, the Dropout module's promise."""
import pickle
import types
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.layers.validation import integer


# ---- 1. check_kept_names: a false warning for a layer whose output copies a parameter --

class PrependToken(Layer):
    """A learned token put before the sequence (ViT's class token): (N, T, D) -> (N, T+1, D).
    It keeps nothing of its input (its backward needs none)."""
    devices = ("cpu",)
    examples = [({"dim": 4}, (2, 3, 4))]
    kept_for_backward = ()

    def __init__(self, dim):
        super().__init__()
        self.dim = integer("PrependToken", "dim", dim)
        self.token = self.add_param("token", (self.dim,))

    def reset_parameters(self, rng):
        self.token.value[...] = rng.normal(0, 0.02, self.dim)

    def input_shape(self):  # (the kit refuses a bare error at another width: trial 34)
        return (None, self.dim)

    def output_shape(self, s):
        return (s[0] + 1, s[1])

    def _forward(self, x):
        y = self._buffer("y", (x.shape[0], x.shape[1] + 1, x.shape[2]))
        y[:, 0] = self.token.value
        y[:, 1:] = x
        return y

    def _backward(self, g):
        self.token.grad[...] += g[:, 0].sum(axis=0)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", (g.shape[0], g.shape[1] - 1, g.shape[2]))
        dx[...] = g[:, 1:]
        return dx


def test_no_kept_input_warning_for_a_layer_whose_output_starts_with_a_parameter():
    """check_kept_names takes the first 4-value run of the output, which here is the
    learned token, finds it in the pickle of the `token` parameter (and `_params`) and
    tells the author to add `_params, token` to kept_for_backward, which would drop the
    parameters from every pickle.  Reference: the layer's pickle holds no sample of x."""
    layer = PrependToken(4).astype(np.float64)
    layer.reset_parameters(np.random.default_rng(0))
    x = np.random.default_rng(1).uniform(0.1, 1, (2, 3, 4))
    layer.train(True).forward(x)
    held = pickle.dumps(layer.__getstate__())
    assert not any(row.tobytes() in held for row in x.reshape(-1, 4))  # nothing of x kept
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        testing.check_all(PrependToken)
    kept = [str(w.message) for w in caught if "kept_for_backward" in str(w.message)]
    assert not kept, kept[0]


# ---- 2. check_kept_names: copies it misses although the docs say "a copy of it" --------

def _keeper(keep):
    class Keeper(Layer):
        devices = ("cpu",)
        examples = [({}, (4, 6))]
        kept_for_backward = ("_x",)

        def output_shape(self, s):
            return tuple(s)

        def _forward(self, x):
            self._x, self._other = x, keep(x)
            y = self._buffer("y", x.shape)
            y[...] = 2 * x
            return y

        def _backward(self, g):
            if not self.needs_input_grad:
                return None
            dx = self._buffer("dx", g.shape)
            dx[...] = 2 * g
            return dx
    return Keeper


@pytest.mark.parametrize("how,keep", [("transposed copy", lambda x: x.T.copy()),
                                      ("last sample", lambda x: x[-1].copy())])
def test_kept_names_warns_of_a_transposed_or_partial_copy_of_the_input(how, keep):
    """docs/plugins.md: check_all warns of an attribute holding "the array, a view or a
    copy of it".  Only the first 4-value run of x and y is searched, so a transposed
    copy (a hand-written matmul backward keeps x.T) or the last sample goes unwarned.
    Reference: the unnamed attribute's pickle holds the samples' values."""
    cls = _keeper(keep)
    layer = cls().astype(np.float64)
    x = np.random.default_rng(0).uniform(0.1, 1, (4, 6))
    layer.forward(x)
    held = pickle.dumps(layer.__getstate__()["_other"])
    assert keep(x).tobytes() in held  # the samples ride along in a pickle
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        testing.check_all(cls)
    assert any("_other" in str(w.message) for w in caught), how


# ---- 3. classify: a 16-bit gray PNG's transparent colour is not put over white -------

def test_a_16_bit_gray_png_with_a_transparent_colour_reads_it_as_white(tmp_path):
    """load_image sends mode I;16 to _wide_pixels before _over_white, so a tRNS key
    (transparency=0) reads as black although README/--help say "transparent parts over
    white" (an 8-bit L image with the same key reads white).  Reference: the PNG tRNS
    rule: pixels equal to the key are fully transparent, the others opaque."""
    pytest.importorskip("PIL")
    from PIL import Image

    from nnumba.commands.classify import load_image
    a = np.full((2, 2), 20000, np.uint16)
    a[0, 0] = 0
    path = tmp_path / "t16.png"
    Image.fromarray(a).save(path, transparency=0)
    want = np.where(a == 0, 1.0, a / 65535.0)
    np.testing.assert_allclose(load_image(str(path), 1, (2, 2))[0, 0], want, atol=1e-4)


# ---- 4. the other-trainer note says "from its weights alone" while the loss's options apply

def test_training_on_with_another_trainer_says_the_saved_loss_options_it_applies(tmp_path,
                                                                                capsys):
    """`train --model saved.npz --trainer gd` on an SGD run saved with
    CrossEntropy(reduction="sum"): the note says gd "trains on from its weights alone",
    and resume() returns before its "from ...: its loss's options" line, yet
    loss_options() still applies reduction='sum' (the new run's own record says so).
    Reference: that record; the output should name the options it applied."""
    from nnumba import io
    from nnumba.cli import main
    from nnumba.commands.train_saved import load_saved
    from nnumba.losses import CrossEntropy
    from nnumba.train import SGDTrainer
    data = nnumba.data.load_dataset("mnist-5k")
    model = nnumba.build("mlp", hidden=16, seed=3)
    trainer = SGDTrainer(model, CrossEntropy(reduction="sum"), lr=0.01, batch_size=50)
    trainer.fit(data.x_train[:100], data.y_train[:100], epochs=1)
    first, again = tmp_path / "first.npz", tmp_path / "again.npz"
    io.save(model, first, classes=[str(i) for i in range(10)], input_shape=(1, 28, 28),
            training=trainer)
    capsys.readouterr()
    assert main(["train", "--train-size", "100", "--test-size", "20", "--no-progress",
                 "--epochs", "1", "--model", str(first), "--trainer", "gd", "--lr", "0.001",
                 "--save", str(again)]) == 0
    out = capsys.readouterr().out
    applied = load_saved(str(again))[2]["loss_options"]
    assert applied == {"reduction": "sum"}  # the saved run's options were applied
    assert "reduction='sum'" in out, out


# ---- 5. Dropout subclass: a p set later is silently lost by spec() -------------------

def test_a_dropout_subclass_keeps_a_p_set_after_construction_or_refuses_it():
    """nnumba/layers/dropout.py's docstring: "p may change after construction (a
    schedule) ... spec() and a saved model hold the new value".  For a subclass whose
    constructor names it `rate`, the setter now skips _config, so the rebuilt layer has
    the old rate, silently.  Either the new p survives the spec or setting it is refused."""
    from nnumba.layers import Dropout

    class RateDropout(Dropout):
        type_name = "RateDropout23"

        def __init__(self, rate=0.5, seed=None):
            super().__init__(p=rate, seed=seed, resample=False)

    plugin = types.SimpleNamespace(
        nnumba_register_layers=nnumba.hookimpl(lambda: {"RateDropout23": RateDropout}))
    nnumba.register_plugin(plugin, "review23rate")
    try:
        model = nnumba.Sequential([nnumba.layers.Linear(4, 4), RateDropout(0.5)], seed=0)
        try:
            model.layers[1].p = 0.2
        except nnumba.errors.NnumbaError:
            return  # refused: fine
        again = nnumba.Sequential.from_spec(model.spec())
        assert again.layers[1].p == 0.2
    finally:
        nnumba.unregister_plugin("review23rate")
