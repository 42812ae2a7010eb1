"""Fuzz round 19 (a): NNClassifier.partial_fit's classes, warm_start with the same
model options spelt another way, Hinge's lam on a model without a parameter named
'weight', and nnumba-features' Radius where x ** 2 leaves float32 but ||x|| fits."""
import numpy as np
import pytest

import nnumba

@pytest.fixture
def sk():
    """nnumba.sklearn where scikit-learn is installed (its import raises without it)."""
    pytest.importorskip("sklearn")
    import nnumba.sklearn
    return nnumba.sklearn


@pytest.mark.parametrize("classes", [[[0, 1], [2, 3]], [0.0, np.nan], [None, "a"]],
                         ids=["2-D", "NaN", "None-and-str"])
def test_partial_fit_refuses_classes_scikit_learn_refuses(sk, classes):
    """partial_fit refuses, with a ValueError, a `classes` that scikit-learn's
    unique_labels (MLPClassifier.partial_fit's check) refuses: a 2-D list is not
    flattened into 4 classes, NaN is no class, and None beside str is not numpy's
    bare TypeError. The estimator stays unfitted."""
    from sklearn.utils.multiclass import unique_labels
    with pytest.raises(ValueError), np.errstate(invalid="ignore"):
        unique_labels(classes)  # the reference: scikit-learn refuses it
    x = np.random.default_rng(0).normal(size=(12, 3))
    y = {0: np.arange(12) % 4, 1: np.zeros(12), 2: np.array(["a"] * 12, dtype=object)}[
        [[[0, 1], [2, 3]], [0.0, np.nan]].index(classes) if classes[0] is not None else 2]
    est = sk.NNClassifier(epochs=1, random_state=0)
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(x, y, classes=classes)
    assert not hasattr(est, "model_") and not hasattr(est, "classes_")


def test_partial_fit_still_takes_classes_scikit_learn_takes(sk):
    """Valid classes (strings, or more than y holds) are taken as before, in order."""
    x = np.random.default_rng(0).normal(size=(6, 3))
    est = sk.NNClassifier(epochs=1, random_state=0)
    est.partial_fit(x, np.array(["b", "a"] * 3), classes=np.array(["c", "a", "b"]))
    assert est.classes_.tolist() == ["a", "b", "c"]
    est.partial_fit(x, np.array(["c"] * 6), classes=["b", "c", "a"])
    with pytest.raises(ValueError, match="not the same"):
        est.partial_fit(x, np.array(["c"] * 6), classes=["a", "b"])


def test_warm_start_takes_the_same_model_options_spelt_as_a_tuple(sk):
    """warm_start continues a model whose options changed only in spelling
    ({'hidden': [5]} then {'hidden': (5,)}: nnumba.build gives the same spec), and
    still refuses options that build another network."""
    assert nnumba.build("mlp", hidden=[5], inputs=4, classes=3).spec() == \
        nnumba.build("mlp", hidden=(5,), inputs=4, classes=3).spec()  # the reference
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    est = sk.NNClassifier(model_options={"hidden": [5]}, epochs=1, random_state=0).fit(x, y)
    est.set_params(model_options={"hidden": (5,)}, warm_start=True)
    est.fit(x, y)
    assert est.n_iter_ == 2
    est.set_params(model_options={"hidden": (6,)})
    with pytest.raises(ValueError, match="changed since model_ was built"):
        est.fit(x, y)
    assert est.n_iter_ == 2


def test_warm_start_compares_layer_objects_by_their_specs(sk):
    """With layer objects as the model, warm_start continues after equal layers are
    set again and refuses layers of another shape."""
    from nnumba.layers import Linear, ReLU
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    est = sk.NNClassifier(model=[Linear(4, 5), ReLU(), Linear(5, 3)], epochs=1,
                          random_state=0, warm_start=True).fit(x, y)
    est.set_params(model=[Linear(4, 5), ReLU(), Linear(5, 3)]).partial_fit(x, y)
    assert est.n_iter_ == 2
    est.set_params(model=[Linear(4, 6), ReLU(), Linear(6, 3)])
    with pytest.raises(ValueError, match="changed since model_ was built"):
        est.fit(x, y)


def _low_rank(seed=0):
    return nnumba.Sequential.from_spec([{"type": "LowRankLinear", "in_features": 4,
                                         "out_features": 1, "rank": 2}], seed=seed)


def test_hinge_lam_is_not_silently_dropped_for_weights_not_named_weight():
    """Hinge(lam) penalises the parameters named 'weight' (documented); on a model
    with none (nnumba-extra-activations' LowRankLinear: u, v, bias) lam > 0 would
    train bit for bit as lam = 0, so it is refused with a SpecError naming lam and
    the model's parameters, before any update; lam = 0 still trains."""
    pytest.importorskip("nnumba_extra_activations")
    from nnumba.errors import SpecError
    from nnumba.losses import Hinge
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype(np.float32)
    s = np.where(x[:, 0] > 0, 1, -1)
    model = _low_rank()
    before = model.flat_params.copy()
    with pytest.raises(SpecError, match=r"lam.*'weight'.*0\.u") as err:
        nnumba.SGDTrainer(model, Hinge(lam=100.0), lr=0.1, seed=0).fit(x, s, epochs=3)
    assert "0.bias" in str(err.value)
    np.testing.assert_array_equal(model.flat_params, before)  # no update was made
    nnumba.SGDTrainer(_low_rank(), Hinge(lam=0.0), lr=0.1, seed=0).fit(x, s, epochs=1)


def test_hinge_lam_still_penalises_a_models_weights():
    """Built-in models keep the documented penalty on their 'weight' parameters."""
    from nnumba.losses import Hinge
    model = nnumba.Sequential.from_spec([{"type": "Linear", "in_features": 2,
                                          "out_features": 1}], seed=0)
    w = model.params()[0][1].value
    assert Hinge(lam=0.5).penalty(model.params()) == pytest.approx(0.5 * float((w * w).sum()))


@pytest.mark.parametrize("scale", [1e19, 1e-25, 1e-38])
def test_radius_is_the_norm_where_the_norm_fits_float32(scale):
    """nnumba-features' Radius gives ||x|| wherever the norm fits float32, although
    x ** 2 overflows (1e19) or underflows (1e-25, 1e-38): [3s, 4s] has
    norm 5s (closed form; np.hypot in float64 agrees), and the gradient x / ||x||
    is (0.6, 0.8), not 0."""
    features = pytest.importorskip("nnumba_features.layers")
    x = np.array([[3 * scale, 4 * scale], [0, 0]], np.float32)
    want = np.hypot(np.float64(x[0, 0]), np.float64(x[0, 1]))
    layer = features.Radius(2)
    y = layer.forward(x)
    assert np.isfinite(y).all() and y[0, 0] == pytest.approx(want, rel=1e-6, abs=0)
    assert y[1, 0] == 0
    g = layer.backward(np.ones((2, 1), np.float32))
    np.testing.assert_allclose(g[0], x[0].astype(np.float64) / want, rtol=1e-5)
    np.testing.assert_array_equal(g[1], [0, 0])  # the kink at 0, as before
