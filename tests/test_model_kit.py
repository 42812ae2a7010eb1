"""The named-model kit (plugin trial 14 found none): every registered model passes
it, and it names what is wrong with a model that would fail in nnumba train,
summary or classify."""
import numpy as np
import pytest

import nnumba
from nnumba import testing
from nnumba.models import NamedModel
from nnumba.registry import get_registry
from runtime_plugin import runtime_plugin

# models too large to build at their defaults, or that only infer
OPTIONS = {"image-linear": {"height": 4, "width": 4, "channels": 1}}
INFERENCE = {"alexnet"}


@pytest.mark.parametrize("name", sorted(get_registry()._table("model").names))
def test_every_registered_model_conforms(name):
    model = testing.check_model(name, train=name not in INFERENCE, **OPTIONS.get(name, {}))
    assert isinstance(model, nnumba.Sequential)


def _dense(inputs=4, classes=3):
    return [{"type": "Linear", "in_features": inputs, "out_features": classes}]


BROKEN = {
    "shape-misfit": (NamedModel(_dense, input_shape=(5,)), "does not go through"),
    # (a first Linear fixes the shape a bare model gives none of: a Flatten does not)
    "no-shape": (NamedModel(lambda inputs=4, classes=3: [{"type": "Flatten"},
                                                         *_dense(inputs, classes)]),
                 "no input_shape, and its first layer \\(Flatten\\) does not fix one"),
    "ignores-classes": (NamedModel(lambda inputs=4, classes=3: _dense(inputs, 10),
                                   input_shape=lambda inputs=4, **_: (inputs,)),
                        "classes=3 gives an output of 10"),
    "ignores-inputs": (NamedModel(_dense, input_shape=(4,)), "inputs=7 gives an input of 4"),
    "wrong-loss": (NamedModel(_dense, input_shape=lambda inputs=4, **_: (inputs,),
                              train_defaults={"loss": "Logistic"}),
                   "Logistic does not train its outputs"),
    "nan-outputs": (NamedModel(lambda inputs=4, classes=3: _dense(inputs, classes) + [
        {"type": "Linear", "in_features": classes, "out_features": classes}],
        input_shape=lambda inputs=4, **_: (inputs,)), "NaN or inf"),
}


@pytest.fixture(scope="module")
def broken():
    with runtime_plugin(models={f"kit-{name}": model for name, (model, _) in BROKEN.items()}):
        yield


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_kit_names_what_is_wrong(broken, case, monkeypatch):
    if case == "nan-outputs":  # weights past float32's range: the outputs overflow
        from nnumba.testing import models
        build = models._seed0   # the kit's nnumba.build(name, seed=0, **options)
        monkeypatch.setattr(models, "_seed0", lambda *a: _huge(build(*a)))
    with pytest.raises(testing.ConformanceError, match=BROKEN[case][1]):
        testing.check_model(f"kit-{case}")


def _huge(model):
    model.flat_params[...] = 3e38
    return model


def test_an_unknown_model_is_a_conformance_error():
    with pytest.raises(testing.ConformanceError, match="no-such-model"):
        testing.check_model("no-such-model")
    assert np.isfinite(testing.check_model("mlp", hidden=8).flat_params).all()
