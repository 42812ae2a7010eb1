"""Fuzz round 13, the conformance kit: a layer whose output is NaN, one that is not
deterministic, and one whose own code raises get a diagnosis that names them."""
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import testing
from nnumba.layers import Linear, ReLU
from nnumba.losses import MSE
from nnumba.testing import ConformanceError
from scale_layer import _Scale, _variant


def _all_nan(self, x):
    y = _Scale._forward(self, x)
    y[...] = np.nan
    return y


def _inf_in_eval(self, x):
    y = _Scale._forward(self, x)
    if not self.training:
        y[0, 0] = np.inf
    return y


def _counting(self, x):
    self.calls = getattr(self, "calls", 0) + 1
    y = _Scale._forward(self, x)
    y += 1e-3 * self.calls
    return y


def _divides_by_zero(self, x):
    return 1 / 0


def _index_error_in_backward(self, dl_dy):
    return [][0]


def _run(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one-thread race warning
        testing.check_all(cls)


@pytest.mark.parametrize("cls, says", [
    (_variant("AllNaN", _forward=_all_nan),
     r"AllNaN: output holds NaN or inf for a finite input \(the example of shape \(3, 4\)\)"),
    (_variant("InfInEval", _forward=_inf_in_eval),
     r"InfInEval: output holds NaN or inf for a finite input \(the example of shape "
     r"\(3, 4\), in evaluation mode\)"),
    (_variant("Counting", _forward=_counting),
     r"Counting: in evaluation mode two forwards of the same input differ .*not "
     r"deterministic"),
])
def test_the_kit_names_nan_and_nondeterminism_not_the_batch(cls, says):
    with pytest.raises(ConformanceError, match=says) as info:
        _run(cls)
    assert "rest of its batch" not in str(info.value)


def test_the_repro_layer_that_fills_its_output_with_nan():
    class AllNaN(nnumba.Layer):
        examples = [({}, (2, 3))]

        def _forward(self, x):
            y = self._buffer("y", x.shape)
            y[...] = np.nan
            return y

        def _backward(self, g):
            return self._buffer("dx", g.shape)
    with pytest.raises(ConformanceError, match="AllNaN: output holds NaN or inf for a "
                                               "finite input"):
        testing.check_all(AllNaN)


@pytest.mark.parametrize("cls, kind, check", [
    (_variant("DividesByZero", _forward=_divides_by_zero), ZeroDivisionError, "check_layer"),
    (_variant("IndexInBackward", _backward=_index_error_in_backward), IndexError,
     "check_read_only"),
    (_variant("BadOutputShape", output_shape=_divides_by_zero), ZeroDivisionError,
     "check_layer"),
])
def test_an_error_of_the_layers_own_code_names_the_check_and_the_example(cls, kind, check):
    with pytest.raises(ConformanceError, match=rf"{cls.__name__}: {kind.__name__} \(.*\) was "
                                               rf"raised by its code in {check} on the "
                                               rf"example of shape \(3, 4\)") as info:
        _run(cls)
    assert isinstance(info.value.__cause__, kind)  # chained: its traceback is kept
    assert info.value.__cause__.__traceback__ is not None


def test_the_kits_own_failures_are_not_wrapped_again():
    with pytest.raises(ConformanceError) as info:
        _run(_variant("AllNaN", _forward=_all_nan))
    assert info.value.__cause__ is None and "was raised by its code" not in str(info.value)


def test_an_error_of_a_losss_own_code_names_the_example():
    class Dividing(MSE):
        examples = [({}, (4, 3), "values")]

        def _compute(self, y_hat, y, scale):
            return 1 / 0
    with pytest.raises(ConformanceError, match=r"Dividing: ZeroDivisionError \(.*\) was raised "
                                               r"by its code in check_loss_case on the "
                                               r"example of shape \(4, 3\)") as info:
        testing.check_loss(Dividing)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize("cls", [Linear, ReLU, _Scale])
def test_correct_layers_still_pass(cls):
    _run(cls)


def test_a_correct_layer_passes_at_a_batch_of_one():
    _run(type("ScaleOfOne", (_Scale,), {"examples": [({}, (1, 4))]}))
