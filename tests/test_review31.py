"""Review 31, of this sitting's own changes: a safetensors file of three batch norms was
past the orders tried (a module's own tensors named as a layer's parameters now take its
order), past the limit own tensors kept weight and bias first no more, the kit passed one
generator shared by every copy and a RandomState, and check_model took an option named
name or seed as its own."""
import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.layers.validation import number


def _torch_and_safetensors():
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    return torch, st


# ---- finding 1: safetensors + modules with buffers/extra tensors past _MAX_ORDERS ----------

class _BN(Layer):
    """A batch norm as docs/plugins.md ("State that is not trained") declares one: weight,
    bias, then running_mean and running_var as trainable=False parameters (torch's names
    and registration order).  Identity forward: only the loading is looked at."""

    def __init__(self, features):
        super().__init__()
        self.features = features
        self.weight = self.add_param("weight", (features,))
        self.bias = self.add_param("bias", (features,))
        self.running_mean = self.add_param("running_mean", (features,), trainable=False)
        self.running_var = self.add_param("running_var", (features,), trainable=False)

    def _forward(self, x):
        return x

    def _backward(self, g):
        return g


def test_safetensors_with_three_batchnorms_loads_as_the_npz_does(tmp_path):
    """torch_import.py:133-148 (_named_siblings) makes every BatchNorm module's four own
    tensors a group of 4! = 24 orders; three of them are 13,824 > _MAX_ORDERS, so the
    fallback (:165-168) calls _refuse_swappable, which refuses 'bias' and 'running_mean'
    (both (C,)) although the names fix the order (:205-208 forbid any other).  At
    de1056c this file loaded, each tensor in its place."""
    torch, st = _torch_and_safetensors()
    from nnumba.torch_import import load_torch_weights
    torch.manual_seed(0)
    t = torch.nn.Sequential(*[m for _ in range(3)
                              for m in (torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))])
    for m in t:
        if isinstance(m, torch.nn.BatchNorm1d):
            for v in (m.weight.data, m.bias.data, m.running_mean, m.running_var):
                v.uniform_()
    state = {k: v for k, v in t.state_dict().items() if "num_batches" not in k}
    path = tmp_path / "bn.safetensors"
    st.save_file(state, str(path))
    model = nnumba.Sequential(*[m for _ in range(3) for m in (
        nnumba.get_layer("Linear")(4, 4), _BN(4))])
    load_torch_weights(model, path)
    for (name, p), (key, ref) in zip(model.params(), state.items()):
        np.testing.assert_allclose(p.value, ref.numpy(), rtol=1e-6, err_msg=f"{name} <- {key}")


class _Extra(Layer):
    def __init__(self):
        super().__init__()
        self.weight = self.add_param("weight", (4, 4))
        self.bias = self.add_param("bias", (4,))
        self.alpha = self.add_param("alpha", (1,))
        self.beta = self.add_param("beta", (2,))

    def _forward(self, x):
        return x

    def _backward(self, g):
        return g


def test_safetensors_modules_with_extra_tensors_past_the_limit_keep_weight_bias_first(tmp_path):
    """Three modules with weight, bias, alpha, beta (all shapes distinct, so one order
    fits): 24**3 orders > _MAX_ORDERS, and the fallback ranks a module's own tensors
    alphabetically (torch_import.py:168, `[children]` is sorted) - alpha, beta, bias,
    weight - where de1056c kept weight, bias, then the rest by name, torch's order.  The
    file that loaded at de1056c is now refused ("its named modules could be in 13,824
    orders")."""
    torch, st = _torch_and_safetensors()
    from nnumba.torch_import import load_torch_weights

    class TExtra(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(4, 4))
            self.bias = torch.nn.Parameter(torch.randn(4))
            self.alpha = torch.nn.Parameter(torch.randn(1))
            self.beta = torch.nn.Parameter(torch.randn(2))

    torch.manual_seed(0)
    state = torch.nn.Sequential(TExtra(), TExtra(), TExtra()).state_dict()
    path = tmp_path / "extra.safetensors"
    st.save_file(state, str(path))
    model = nnumba.Sequential(_Extra(), _Extra(), _Extra())
    load_torch_weights(model, path)
    for (name, p), (key, ref) in zip(model.params(), state.items()):
        np.testing.assert_allclose(p.value, ref.numpy(), rtol=1e-6, err_msg=f"{name} <- {key}")


# ---- finding 2: a generator shared by every copy passes check_seeded / check_model ----------

class _SharedDrop(Layer):
    """Inverted dropout drawing from ONE generator for all instances (a class attribute
    from fresh entropy): one seed does not fix a model's masks."""
    examples = [({"p": 0.5}, (4, 5))]
    kept_for_backward = ("_mask",)
    _shared = np.random.default_rng()

    def __init__(self, p=0.5):
        super().__init__()
        self.p = number("_SharedDrop", "p", p, 0, 1, below=1)

    def random_generator(self):
        return _SharedDrop._shared

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        if not self.training:
            self._mask = None
            self.kernels.scale(x.reshape(x.size), 1, y.reshape(y.size))
            return y
        keep = self._shared.random(x.shape) >= self.p
        self._mask = self.device.to_device((keep / (1 - self.p)).astype(x.dtype))
        self.kernels.multiply(x.reshape(x.size), self._mask.reshape(x.size), y.reshape(y.size))
        return y

    def _backward(self, g):
        if not self.needs_input_grad:
            return None
        n, dx = g.size, self._buffer("dx", g.shape)
        if self._mask is None:
            self.kernels.scale(g.reshape(n), 1, dx.reshape(n))
        else:
            self.kernels.multiply(g.reshape(n), self._mask.reshape(n), dx.reshape(n))
        return dx


def test_the_kit_refuses_a_generator_shared_by_every_copy():
    """draw_alike (testing/layers.py:138-144) compares ga's and gb's states; where both
    copies return the same object the states are trivially equal, so check_seeded (and
    check_model) pass a layer whose two seed-0 models draw different masks."""
    x = np.ones((8, 6), np.float32)
    outs = []
    for _ in range(2):  # the reference: two models of one seed, run independently
        m = nnumba.Sequential(nnumba.get_layer("Linear")(6, 6), _SharedDrop(0.5), seed=0)
        m.train()
        outs.append(np.array(m.forward(x)))
    assert not np.array_equal(*outs)  # one seed, two different runs
    with pytest.raises(testing.ConformanceError):
        testing.check_all(_SharedDrop)


# ---- finding 3: check_model takes options named as its own arguments -----------------------

@pytest.mark.parametrize("option", ["name", "seed"])
def test_check_model_refuses_an_option_named_like_its_arguments_as_no_option(option):
    """The range made build() and NamedModel.spec() take their own parameters
    positionally, but testing.check_model(name, *, train, **options) (testing/models.py:17,
    :32, :46) still gives Python's "multiple values for argument" TypeError for a model
    option named name or seed.  Reference: build()'s own refusal of an unknown option."""
    with pytest.raises(nnumba.SpecError, match="has no option dropout"):
        nnumba.build("mlp", dropout=0.2)
    with pytest.raises(testing.ConformanceError, match=f"no option {option}"):
        testing.check_model("mlp", **{option: 1})


# ---- finding 4: a generator that is no numpy Generator: the kit blames the layer's code -----

def test_a_random_generator_that_is_no_numpy_generator_is_named_as_such():
    """random_generator() returning a legacy RandomState: check_seeded's draw_alike reads
    .bit_generator and the kit reports "AttributeError ... was raised by its code in
    check_seeded" - the kit's own code raised it, and the message does not say that
    random_generator() must return a numpy Generator."""

    class RSDrop(_SharedDrop):
        def reset_parameters(self, rng):
            self._rs = np.random.RandomState(int(rng.integers(2**31)))

        def random_generator(self):
            return self._rs

    assert not isinstance(np.random.RandomState(0), np.random.Generator)  # the reference
    with pytest.raises(testing.ConformanceError) as info:
        testing.check_all(RSDrop)
    assert "raised by its code" not in str(info.value)
    assert "Generator" in str(info.value)
