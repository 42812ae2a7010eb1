"""load_torch_weights from Python: a state_dict of live torch tensors, numpy arrays or
lists loads as torch computes with it; NaN, infinity and values past the model's
dtype are refused before anything is copied, as nnumba.io.load_weights refuses them."""
import numpy as np
import pytest

from nnumba import Sequential
from nnumba.errors import NonFiniteError, WeightsError
from nnumba.layers import Linear, ReLU
from nnumba.torch_import import load_torch_weights


def _model(dtype=np.float32):
    return Sequential(Linear(4, 3), ReLU(), Linear(3, 2), seed=0).astype(dtype)


def _state(seed=0):
    rng = np.random.default_rng(seed)
    return {"0.weight": rng.normal(size=(3, 4)), "0.bias": rng.normal(size=3),
            "2.weight": rng.normal(size=(2, 3)), "2.bias": rng.normal(size=2)}


def _values(model):
    return [p.value.copy() for _, p in model.params()]


def test_named_parameters_of_a_torch_model_load_and_compute_as_torch():
    """dict(named_parameters()) holds tensors that require grad: numpy() on them
    used to raise torch's RuntimeError."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    ours = load_torch_weights(_model(), dict(theirs.named_parameters()))
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    with torch.no_grad():
        want = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours.forward(x), want, rtol=1e-5, atol=1e-6)
    twin = load_torch_weights(_model(), theirs.state_dict())  # detached already: the same
    np.testing.assert_array_equal(twin.forward(x), ours.forward(x))


def test_lists_load_as_the_arrays_they_spell():
    """A plain list used to raise AttributeError: 'list' object has no attribute 'shape'."""
    state = _state()
    from_lists = load_torch_weights(_model(np.float64), {k: v.tolist() for k, v in state.items()})
    for (_, p), v in zip(from_lists.params(), state.values()):
        np.testing.assert_array_equal(p.value, v)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_values_are_refused_and_nothing_is_copied(bad, dtype):
    state = _state()
    state["2.weight"][1, 2] = bad
    model = _model(dtype)
    before = _values(model)
    with pytest.raises(NonFiniteError, match=r"state_dict: parameter 2.weight holds NaN or "
                                             r"infinity \(torch tensor '2.weight'\)"):
        load_torch_weights(model, state)
    for value, (_, p) in zip(before, model.params()):
        np.testing.assert_array_equal(p.value, value)  # not even 0.weight, which was fine


def test_float64_values_past_float32s_range_are_refused_for_a_float32_model():
    state = _state()
    state["0.bias"][0] = 1e39  # finite in float64, infinity once cast to float32
    model = _model()
    before = _values(model)
    with pytest.raises(WeightsError, match=r"state_dict: parameter 0.bias \(torch tensor "
                                           r"'0.bias'\) holds values beyond the model's "
                                           r"float32 range \(at most 3.403e\+38\)"):
        load_torch_weights(model, state)
    for value, (_, p) in zip(before, model.params()):
        np.testing.assert_array_equal(p.value, value)
    wide = load_torch_weights(_model(np.float64), state)  # float64 holds it
    assert wide.params()[1][1].value[0] == 1e39


def test_non_finite_values_in_a_file_name_the_file(tmp_path):
    state = _state()
    state["0.weight"][0, 0] = np.nan
    path = tmp_path / "w.npz"
    np.savez(path, **state)
    with pytest.raises(NonFiniteError, match=r"w.npz: parameter 0.weight holds NaN"):
        load_torch_weights(_model(), path)


@pytest.mark.parametrize("source", [None, 3, [np.zeros(3)], b"w.npz"])
def test_a_source_that_is_neither_path_nor_mapping_is_named(source):
    with pytest.raises(WeightsError, match=r"torch weights are a path or a state_dict"):
        load_torch_weights(_model(), source)


def test_unreadable_values_and_names_are_weights_errors():
    state = _state()
    with pytest.raises(WeightsError, match=r"state_dict: tensor names are strings.*got 0"):
        load_torch_weights(_model(), {0: v for v in state.values()})
    ragged = dict(state, **{"0.bias": [1.0, [2.0, 3.0]]})
    with pytest.raises(WeightsError, match=r"torch tensor '0.bias' cannot be read as a numpy"):
        load_torch_weights(_model(), ragged)
    torch = pytest.importorskip("torch")
    halves = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in state.items()}
    with pytest.raises(WeightsError, match=r"torch tensor '0.weight' cannot be read"):
        load_torch_weights(_model(), halves)
