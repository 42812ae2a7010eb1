"""Fuzz round 35: the estimators' labels of mixed kinds (numbers and strings, None) and a
single class of object labels gave bare errors; a model option named as a parameter of
build() or of a named model's spec() (seed, spec_or_name, name, self) was Python's
"multiple values" error, a DTypeError or an nnumba bug (status 1) instead of "no option"."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import NnumbaError
from nnumba.errors import SpecError

X4 = np.random.default_rng(0).standard_normal((4, 2))


# ---- finding 1 ------------------------------------------------------------------------
@pytest.mark.parametrize("labels", [
    np.array(["cat"] * 4, dtype=object),     # what a pandas column of strings holds
    np.array(["ca", "ca", "ca", "ca"], dtype=object),
], ids=["object-str", "object-str2"])
def test_perceptron_classifier_refuses_one_class_of_object_labels_clearly(labels):
    pytest.importorskip("sklearn")
    Perceptron = pytest.importorskip("sklearn.linear_model").Perceptron
    from nnumba.sklearn import PerceptronClassifier
    # Reference 1: scikit-learn's own Perceptron refuses a single class with a ValueError.
    with pytest.raises(ValueError):
        Perceptron().fit(X4, labels)
    # Reference 2: the same labels as a '<U' array get nnumba's own clear refusal.
    with pytest.raises(ValueError, match="two classes"):
        PerceptronClassifier().fit(X4, labels.astype(str))
    # The object array must get the same (at HEAD: AttributeError "'str' object has no
    # attribute 'tolist'" from sklearn_perceptron.py:47).
    est = PerceptronClassifier()
    with pytest.raises((ValueError, NnumbaError), match="two classes"):
        est.fit(X4, labels)
    assert not hasattr(est, "classes_")  # left as before (as_before_on_error)


# ---- finding 2 ------------------------------------------------------------------------
MIXED = {
    "str-and-int": np.array(["a", 1, "a", 1], dtype=object),
    "str-and-None": np.array(["a", None, "a", None], dtype=object),
}


def _estimators():
    from nnumba.sklearn import NNClassifier, PerceptronClassifier
    spec = [{"type": "Linear", "in_features": 2, "out_features": 2}]
    return {
        "NNClassifier.fit": lambda y: NNClassifier(model=spec, epochs=1).fit(X4, y),
        "NNClassifier.partial_fit": lambda y: NNClassifier(model=spec).partial_fit(
            X4, y, classes=["a", "b"]),
        "PerceptronClassifier.fit": lambda y: PerceptronClassifier().fit(X4, y),
    }


@pytest.mark.parametrize("call", ["NNClassifier.fit", "NNClassifier.partial_fit",
                                  "PerceptronClassifier.fit"])
@pytest.mark.parametrize("kind", list(MIXED))
def test_classifier_with_labels_of_mixed_types_gives_a_clear_error(call, kind):
    pytest.importorskip("sklearn")
    unique_labels = pytest.importorskip("sklearn.utils.multiclass").unique_labels
    from nnumba.sklearn import NNClassifier
    y = MIXED[kind]
    # Reference: scikit-learn's unique_labels cannot order these labels (they are no
    # classification target), and nnumba's own partial_fit(classes=...) already turns
    # the same labels into a LabelError (nnumba/sklearn.py:_checked_classes).
    with pytest.raises((TypeError, ValueError)):
        unique_labels(y)
    with pytest.raises(NnumbaError):
        NNClassifier(model=[{"type": "Linear", "in_features": 2, "out_features": 2}]
                     ).partial_fit(X4, ["a", "a", "a", "a"], classes=y)
    # As y they must be refused as clearly: a ValueError/NnumbaError, not numpy's bare
    # TypeError "'<' not supported between instances of 'int' and 'str'".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _estimators()[call](y)
        except TypeError as exc:  # the bare error from numpy's sort inside np.unique
            pytest.fail(f"bare TypeError from deep inside numpy: {exc}")
        except (ValueError, NnumbaError):
            pass
        else:
            pytest.fail("labels of mixed types were accepted")


# ---- finding 3 ------------------------------------------------------------------------

def _unknown_option_message(option):
    """The project's own refusal of an option mlp does not take, for a name that
    collides with nothing (the reference the colliding names must get too)."""
    assert option not in nnumba.get_model("mlp").options()  # not one of mlp's options
    with pytest.raises(SpecError, match="has no option dropout"):
        nnumba.build("mlp", dropout=0.2)
    return f"has no option {option}"


@pytest.mark.parametrize("option", ["name", "self"])
def test_build_refuses_a_model_option_named_like_a_parameter_of_spec_as_unknown(option):
    # At HEAD: TypeError "NamedModel.spec() got multiple values for argument 'name'".
    with pytest.raises(SpecError, match=_unknown_option_message(option)):
        nnumba.build("mlp", **{option: 1})


@pytest.mark.parametrize("option", ["seed", "spec_or_name", "name", "self"])
def test_estimator_model_option_named_like_a_build_argument_is_unknown(option):
    pytest.importorskip("sklearn")
    from nnumba.sklearn import NNClassifier
    # At HEAD: DTypeError "model 'mlp' (seed=3, ...): nnumba.build() got multiple values
    # for keyword argument 'seed'" (models/fitting.py:66-72).
    X = np.random.default_rng(0).standard_normal((6, 4))
    est = NNClassifier(model_options={option: 3}, epochs=1, random_state=0)
    with pytest.raises(SpecError, match=_unknown_option_message(option)):
        est.fit(X, [0, 1, 2, 0, 1, 2])


def _cli(*args):
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "nnumba", *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.parametrize("args, option", [
    (("summary", "mlp", "--model-option", "self=1"), "self"),
    (("train", "--model-option", "seed=3", "--train-size", "40", "--epochs", "1"), "seed"),
], ids=["summary-self", "train-seed"])
def test_cli_model_option_named_like_an_internal_argument_is_a_user_error(args, option):
    # README: "status 2 for what the user can fix and 1 for a bug". At HEAD summary exits
    # 1 with "TypeError: NamedModel.spec() got multiple values for argument 'self'
    # (unexpected: ... please report it)"; train says "nnumba.build() got multiple values
    # for keyword argument 'seed'".
    done = _cli(*args)
    assert "Traceback" not in done.stderr
    assert done.returncode == 2, done.stderr
    assert _unknown_option_message(option) in done.stderr, done.stderr
