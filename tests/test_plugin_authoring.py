"""An author's usual slips with a layer or a loss are named by the layer, the kit or the
model, in one line that says what to do; none is a silent wrong answer."""
import numpy as np
import pytest

import nnumba
from nnumba.layers import Linear
from nnumba.layers.contract import ContractError
from nnumba.layers.validation import integer


class Affine(nnumba.Layer):
    """y = x * gamma + beta per feature, with the kernel set only."""
    examples = [({"features": 3}, (4, 3))]

    def __init__(self, features: int):
        super().__init__()
        self.features = integer("Affine", "features", features)
        self.gamma = self.add_param("gamma", (self.features,))
        self.beta = self.add_param("beta", (self.features,))

    def reset_parameters(self, rng):
        self.gamma.value[...] = rng.uniform(0.5, 1.5, self.features)
        self.beta.value[...] = rng.uniform(-0.5, 0.5, self.features)

    def input_shape(self):
        return (self.features,)

    def _forward(self, x):
        k = self.kernels
        g = self._buffer("g", x.shape)
        k.fill(g, 0)
        k.add_bias(g, self.gamma.value)
        y = self._buffer("y", x.shape)
        k.multiply(x.reshape(x.size), g.reshape(g.size), y.reshape(y.size))
        k.add_bias(y, self.beta.value)
        self._x, self._g = x, g
        return y

    def _backward(self, dl_dy):
        k = self.kernels
        t = self._buffer("t", dl_dy.shape)
        k.multiply(dl_dy.reshape(dl_dy.size), self._x.reshape(self._x.size), t.reshape(t.size))
        k.accumulate_bias_grad(t, self.gamma.grad)
        k.accumulate_bias_grad(dl_dy, self.beta.grad)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        k.multiply(dl_dy.reshape(dl_dy.size), self._g.reshape(self._g.size), dx.reshape(dx.size))
        return dx


class Rebinding(Affine):
    def reset_parameters(self, rng):
        self.gamma.value = rng.uniform(0.5, 1.5, self.features)   # the slip: not in place
        self.beta.value[...] = 0


def test_a_parameter_assigned_in_reset_parameters_is_refused_at_construction():
    with pytest.raises(ContractError, match=r"^Rebinding: reset_parameters assigned a new array "
                                            r"to gamma.value; write into it in place "
                                            r"\(gamma.value\[...\] = ...\)"):
        Rebinding(3)


def test_without_the_check_a_model_would_silently_stop_training_the_parameter():
    # What the check prevents: the rebound gamma is no view of the model's buffer.
    model = nnumba.Sequential(Linear(3, 3), Affine(3), seed=0)
    model.layers[1].gamma.value[...] = 2.0
    assert np.shares_memory(model.layers[1].gamma.value, model.flat_params)
    with pytest.raises(ContractError, match=r"Affine #1: reset_parameters"):
        Rebinding.reset_parameters(model.layers[1], np.random.default_rng(0))


def test_a_subclass_calling_super_reset_is_checked_once_and_passes():
    class Child(Affine):
        def reset_parameters(self, rng):
            super().reset_parameters(rng)
            self.beta.value[...] = 0
    layer = Child(2)
    assert np.all(layer.beta.value == 0) and np.all(layer.gamma.value >= 0.5)


# ---- the kit names malformed examples and the usual slips ------------------------------

from nnumba import testing  # noqa: E402
from nnumba.losses import MSE  # noqa: E402


def _with(base, **attrs):
    return type(base.__name__ + "Variant", (base,), attrs)


@pytest.mark.parametrize("examples, message", [
    ([{"features": 3}], r"examples\[0\] is \{'features': 3\}; each example is a tuple "
                        r"\(kwargs, input shape\)"),
    ([((4, 3), {"features": 3})], r"examples\[0\] is \(\(4, 3\), .*kwargs a dict"),
    ([({"features": 3}, 3)], r"examples\[0\]: the shape must be a tuple of positive sizes"),
    ([({"feature": 3}, (4, 3))], r"AffineVariant\(\*\*\{'feature': 3\}\) raised TypeError: "
                                 r"AffineVariant: missing a required argument: 'features'"),
    ([({"features": 3}, (3,))], r"refused the example input of shape \(3,\) .*batch axis first"),
    ([({"features": 3}, (4, 5))], r"refused the example input of shape \(4, 5\)"),
    ([], r"no examples; add examples = \[\(kwargs, input shape\), ...\]"),
])
def test_malformed_layer_examples_are_conformance_errors_naming_the_layer(examples, message):
    with pytest.raises(testing.ConformanceError, match=r"^AffineVariant: " + message):
        testing.check_all(_with(Affine, examples=examples))


def test_a_backward_that_forgets_dl_dx_is_told_to_return_it():
    def _backward(self, dl_dy):
        Affine._backward(self, dl_dy)
    with pytest.raises(testing.ConformanceError, match="^AffineVariant: _backward returned "
                                                       "None, but needs_input_grad is set"):
        testing.check_all(_with(Affine, _backward=_backward))


def test_a_parameter_copied_in_init_is_named_with_the_rule_it_breaks():
    def __init__(self, features: int):
        Affine.__init__(self, features)
        self.gamma_kept = self.gamma.value

    def _forward(self, x):
        g = self._buffer("g", x.shape)
        self.kernels.fill(g, 0)
        self.kernels.add_bias(g, self.gamma_kept)
        y = self._buffer("y", x.shape)
        self.kernels.multiply(x.reshape(x.size), g.reshape(g.size), y.reshape(y.size))
        self.kernels.add_bias(y, self.beta.value)
        self._x, self._g = x, g
        return y
    # (its float32 copy meets the float64 parameters the kit converts to: the kernels
    # refuse the two dtypes, and the kit names the rule)
    with pytest.raises(testing.ConformanceError, match="an array kept from a parameter .* "
                                                       "read param.value at every call"):
        testing.check_all(_with(Affine, __init__=__init__, _forward=_forward))


class Scaled(MSE):
    """MSE times a factor: a loss with an option."""
    examples = [({"factor": 2.0, "reduction": "sum"}, (3, 2), "values")]

    def __init__(self, factor: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.factor = factor

    def config(self):
        return {"factor": self.factor, **super().config()}

    def _compute(self, y_hat, y, scale):
        losses, grad = super()._compute(y_hat, y, scale * self.factor)
        return losses * self.factor, grad


def test_a_loss_that_passes_the_kit():
    testing.check_loss(Scaled)


@pytest.mark.parametrize("attrs, message", [
    ({"examples": [({}, (3, 2), "value")]},
     r"target kind 'value' is none of 'classes', 'signs', 'values'"),
    ({"examples": [({}, (3, 2))]}, r"examples\[0\] is \(\{\}, \(3, 2\)\); each example is a "
                                   r"tuple \(kwargs, prediction shape, target kind\)"),
    ({"examples": [({}, (3, 2, 2), "classes")]}, r"the kind 'classes' takes predictions of shape \(N, C\)"),
    ({"config": lambda self: MSE.config(self)},
     r"config\(\) gives \{'reduction': 'sum'\}, not the option factor=2.0"),
])
def test_malformed_loss_examples_and_a_forgotten_config_are_named(attrs, message):
    with pytest.raises(testing.ConformanceError, match=r"^ScaledVariant: " + message):
        testing.check_loss(_with(Scaled, **attrs))


class Doubling(nnumba.Layer):
    examples = [({}, (2, 3))]

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        self.kernels.scale(x.reshape(x.size), 2.0, y.reshape(y.size))
        return y

    def _backward(self, dl_dy):
        dx = self._buffer("dx", dl_dy.shape)
        self.kernels.scale(dl_dy.reshape(dl_dy.size), 2.0, dx.reshape(dx.size))
        return dx


def test_a_constructor_that_skips_super_init_is_named_at_construction():
    def __init__(self):
        self.factor = 2
    with pytest.raises(ContractError, match=r"^DoublingVariant.__init__ never called "
                                            r"super\(\).__init__\(\): call it first$"):
        _with(Doubling, __init__=__init__)()

    def __init__(self, features: int = 3):
        self.w = self.add_param("w", (features,))
        nnumba.Layer.__init__(self)
    with pytest.raises(ContractError, match=r"add_param\('w'\) before super\(\).__init__\(\)"):
        _with(Doubling, __init__=__init__)()


def test_a_constructor_with_var_keywords_is_told_why_save_and_load_fail():
    def __init__(self, **options):
        Affine.__init__(self, **options)
    with pytest.raises(testing.ConformanceError,
                       match=r"^AffineVariant: save/load cannot rebuild it from its spec "
                             r"\[\{'type': 'AffineVariant'\}\]: .*name each one \(no \*args "
                             r"or \*\*kwargs\)"):
        testing.check_all(_with(Affine, __init__=__init__))


def test_an_elementwise_layer_with_no_parameters_passes_the_kit():
    testing.check_all(Doubling)


def test_a_class_label_loss_without_target_dtype_is_told_to_declare_it():
    # The kit's labels are int64, but a trainer converts them to target_dtype, else to
    # the model's float dtype: such a loss passed the kit, then failed in nnumba train.
    from nnumba.losses import CrossEntropy
    with pytest.raises(testing.ConformanceError,
                       match=r"^CrossEntropyVariant: refuses classes targets as a trainer "
                             r"passes them, float64 .*declare target_dtype = \"int64\""):
        testing.check_loss(_with(CrossEntropy, target_dtype=None))


def test_a_layer_overriding_forward_instead_of_forward_impl_is_told_so():
    class Doubler(nnumba.Layer):
        def forward(self, x):      # the mistake: the public entry point, not _forward
            return 2 * x

        def _backward(self, dl_dy):
            return 2 * dl_dy

    layer = Doubler()
    layer.forward(np.ones((2, 3), np.float32))
    with pytest.raises(nnumba.errors.NoGradientError, match=r"overrides forward\(\): implement _forward"):
        layer.backward(np.ones((2, 3), np.float32))
    with pytest.raises(nnumba.errors.NoGradientError) as err:  # the plain case: no hint
        Linear(3, 2).backward(np.ones((2, 2), np.float32))
    assert "overrides" not in str(err.value)
