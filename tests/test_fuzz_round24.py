"""Fuzz round 24: class names saved as a set (hash order) or a mapping (its keys kept,
the names lost), masked predictions read under their mask by a loss, an estimator's
input_shape whose size wraps in int64, and a 0-d input taken for a batch of one.
References: numpy.ma, math.prod, Python's own ordering."""
import math

import numpy as np
import pytest

import nnumba
from nnumba import losses
from nnumba.errors import NnumbaError, SaveError, ShapeError
from nnumba.io import stored_info


def _linear3():
    return nnumba.build([{"type": "Linear", "in_features": 4, "out_features": 3}])


# ---- 1. save(classes=<set or dict>) ----------------------------------------------------

def test_save_refuses_a_set_of_class_names(tmp_path):
    """A set has no order: output i would be given whichever name the hash puts i-th."""
    with pytest.raises(SaveError):
        nnumba.save(_linear3(), tmp_path / "m.npz", classes={"cat", "dog", "bird"})


def test_save_does_not_store_a_mappings_keys_as_the_class_names(tmp_path):
    """{index: name} (the shape classify's --labels takes) stored its keys "0", "1", "2"
    and lost the names; either refuse it or store the names in index order."""
    names = {0: "cat", 1: "dog", 2: "bird"}
    try:
        nnumba.save(_linear3(), tmp_path / "m.npz", classes=names)
    except SaveError:
        return
    assert stored_info(tmp_path / "m.npz")["classes"] == [names[k] for k in sorted(names)]


# ---- 2. a loss reads the values under a mask in its predictions ------------------------

def test_loss_does_not_read_values_under_a_mask_in_the_predictions():
    """Targets with masked values are refused (losses.py:94); predictions are not, and the
    masked value enters the loss: 12.5 where numpy.ma gives 0."""
    pred = np.ma.masked_array(np.array([[0.0], [5.0]], np.float32), mask=[[False], [True]])
    target = np.zeros((2, 1), np.float32)
    try:
        value = losses.MSE().forward(pred, target)
    except NnumbaError:
        return  # refused, as masked targets and layer inputs are
    assert value == pytest.approx(float(np.ma.mean((pred - target) ** 2)))


# ---- 3. NNClassifier input_shape whose product overflows int64 -------------------------

def test_nn_estimator_input_shape_product_is_not_wrapped():
    """(2**62 + 1) * 4 wraps to 4 in np.prod's int64, so an input_shape of 2**64 + 4 values
    is taken for X's 4 features (and then ignored by a named model)."""
    pytest.importorskip("sklearn")
    from nnumba.sklearn import NNClassifier
    shape = (2**62 + 1, 4)
    X = np.random.default_rng(0).standard_normal((12, 4))
    y = np.arange(12) % 3
    assert math.prod(shape) != X.shape[1]  # the reference: the shape does not fit X
    with pytest.raises(ValueError):
        NNClassifier(input_shape=shape, epochs=1, model_options={"hidden": [4]},
                     random_state=0).fit(X, y)


# ---- 4. a 0-d input -----------------------------------------------------------------

@pytest.mark.parametrize("layer", ["ReLU", "Sigmoid", "Dropout", "Identity", "Flatten"])
def test_model_forward_refuses_a_0d_input_with_an_nnumba_error(layer):
    """Sequential.forward ends in a bare IndexError (model.py:236, input_shape[0] of ())."""
    model = nnumba.build([{"type": layer}])
    with pytest.raises(ShapeError):
        model.forward(np.array(1.5, np.float32))


@pytest.mark.parametrize("layer", ["ReLU", "Flatten"])
def test_layer_forward_refuses_a_0d_input(layer):
    """check_input means to refuse ndim < 1 (validation.py:102), but check_array's
    np.ascontiguousarray has made the 0-d array (1,) by then: the output's shape is not
    one the input had (ReLU: () -> (1,); Flatten: () -> (1, 1))."""
    x = np.array(1.5, np.float32)
    out = None
    try:
        out = nnumba.get_layer(layer)().forward(x)
    except ShapeError:
        return
    pytest.fail(f"{layer} took a 0-d input as a batch of one: output shape {out.shape}")


def test_save_takes_a_mapping_with_text_indices_and_refuses_one_with_gaps(tmp_path):
    """JSON's keys are text ({"1": "dog", "0": "cat"}); keys that are not 0..n-1 are
    refused, not stored."""
    path = tmp_path / "m.npz"
    nnumba.save(_linear3(), path, classes={"2": "bird", "0": "cat", "1": "dog"})
    assert stored_info(path)["classes"] == ["cat", "dog", "bird"]
    with pytest.raises(SaveError, match="keys must be the output indices"):
        nnumba.save(_linear3(), path, classes={1: "cat", 2: "dog", 3: "bird"})
