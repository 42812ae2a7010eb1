"""Fuzz round 51: the scikit-learn estimators' new ``shuffle`` parameter and pickling.
An estimator pickled before the parameter existed raised AttributeError; toggling
shuffle between partial_fit calls dropped the momentum (with trainer="gd", where it
does nothing); pickling or deep-copying an estimator changed it."""
import copy
import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")
from nnumba.sklearn import NNClassifier  # noqa: E402


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 4))
    return x, np.array(["a", "b", "c"])[rng.integers(0, 3, 37)]


# ---- 1. an estimator pickled before `shuffle` existed ------------------------------------
def test_an_estimator_pickled_before_shuffle_existed_still_works():
    """As test_review_round22_b's input_shape case: a pickle made before 4e0132c has no
    'shuffle' in its state; get_params, repr, clone, fit and partial_fit raised a bare
    AttributeError. Reference: a fresh estimator's get_params and scikit-learn's clone."""
    from sklearn.base import clone
    x, y = _data()
    est = NNClassifier(epochs=1, batch_size=8, random_state=0).fit(x, y)
    state = dict(pickle.loads(pickle.dumps(est)).__dict__)
    del state["shuffle"]  # as a pre-shuffle pickle loads
    old = NNClassifier.__new__(NNClassifier)
    old.__setstate__(state)
    assert old.get_params() == {**NNClassifier().get_params(), "epochs": 1, "batch_size": 8,
                                "random_state": 0}
    repr(old)
    assert clone(old).get_params()["shuffle"] is True
    old.partial_fit(x, y)
    old.fit(x, y)


def test_a_pre_shuffle_pickle_goes_on_with_the_originals_momentum():
    """README: 'partial_fit on a copy goes on with the original's momentum and batch
    order'. A pickle made before shuffle existed kept a 6-item _trainer_settings (no
    shuffle); the 7-item tuple now compared never equals it, so its saved momentum and
    batch order are silently dropped. Reference: the original estimator's own
    partial_fit (the pre-shuffle estimators always shuffled)."""
    x, y = _data()
    est = NNClassifier(epochs=2, batch_size=8, random_state=0).fit(x, y)
    state = dict(pickle.loads(pickle.dumps(est)).__dict__)
    del state["shuffle"]  # (its _trainer_settings are as they were before shuffle)
    old = NNClassifier.__new__(NNClassifier)
    old.__setstate__(state)
    est.partial_fit(x, y)
    old.partial_fit(x, y)
    np.testing.assert_array_equal(old.model_.flat_params, est.model_.flat_params)


# ---- 2. set_params(shuffle=...) between partial_fit calls drops the momentum ------------
SPEC = [{"type": "Linear", "in_features": 4, "out_features": 3}]


def _torch_full_batch_steps(x, y, steps, seed):
    """`steps` momentum-SGD steps of torch on the whole set (lr 0.05, momentum 0.9), from
    the weights the estimator's random_state draws."""
    torch = pytest.importorskip("torch")
    from test_sklearn_shuffle import torch_twin
    net = torch_twin(torch.nn.Linear(4, 3).double(), SPEC, seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(np.searchsorted(np.unique(y), y))
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return [t.detach().numpy() for t in net.parameters()]


@pytest.mark.parametrize("trainer", ["gd", "sgd"])
def test_toggling_shuffle_keeps_the_momentum(trainer):
    """shuffle does not apply to trainer='gd' (sklearn.py: 'gd: all'), and with one batch
    of all samples (sgd, batch_size >= n) the order cannot matter; yet toggling shuffle
    between partial_fit calls builds a new trainer and drops the momentum buffer (the
    next step differs by ~0.01). MLPClassifier keeps its velocities when shuffle is
    set between partial_fit calls. gd is the clear bug; sgd is the design question.
    Reference: torch.optim.SGD, 3 full-batch momentum steps."""
    x, y = _data()
    est = NNClassifier(SPEC, epochs=2, lr=0.05, momentum=0.9, batch_size=64, trainer=trainer,
                       shuffle=False, dtype="float64", random_state=3).fit(x, y)
    est.set_params(shuffle=True).partial_fit(x, y)
    want = _torch_full_batch_steps(x, y, 3, 3)
    for (_, p), w in zip(est.model_.params(), want):
        np.testing.assert_allclose(p.value, w, rtol=1e-9, atol=1e-12)


def test_without_the_toggle_the_torch_reference_agrees():
    """Control (passes today): the same run without set_params matches torch."""
    x, y = _data()
    est = NNClassifier(SPEC, epochs=2, lr=0.05, momentum=0.9, batch_size=64, trainer="gd",
                       shuffle=False, dtype="float64", random_state=3).fit(x, y)
    est.partial_fit(x, y)
    want = _torch_full_batch_steps(x, y, 3, 3)
    for (_, p), w in zip(est.model_.params(), want):
        np.testing.assert_allclose(p.value, w, rtol=1e-9, atol=1e-12)


# ---- 3. pickling a fitted estimator changes it ---------------------------------------------
def test_pickling_does_not_change_the_estimator():
    """_NNEstimator.__getstate__ pops '_trainer' from super().__getstate__(), which for a
    class outside sklearn's modules is the instance's own __dict__ (object.__getstate__,
    Python 3.11+): pickle.dumps(est) and copy.deepcopy(est) remove est._trainer and add
    est._trainer_state. Reference: the __dict__ keys before pickling."""
    x, y = _data()
    est = NNClassifier(epochs=1, batch_size=8, random_state=0).fit(x, y)
    keys, trainer = set(est.__dict__), est._trainer
    pickle.dumps(est)
    copy.deepcopy(est)
    assert set(est.__dict__) == keys
    assert est._trainer is trainer
