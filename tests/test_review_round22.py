"""Review round 22 (items left open in earlier notes): a masked array in a state_dict,
a bfloat16 tensor in one given as a mapping, a data set naming a class twice, and a
pickled model's size.  References: numpy's own masks, collections.Counter, the bytes
of the parameters themselves."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import nnumba
from nnumba.errors import WeightsError
from test_plugin_authoring import Doubling


def _state_dict(model):
    return {name: np.array(p.value) for name, p in model.params()}


def test_a_masked_tensor_in_a_state_dict_is_refused_not_loaded_with_its_hidden_values():
    """np.asarray(masked) is the data under the mask: the values a user masked out
    were loaded as weights.  Reference: numpy's count of masked values."""
    from nnumba.torch_import import load_torch_weights
    model = nnumba.build("mlp", seed=0)
    before = model.flat_params.copy()
    tensors = {k: np.ma.masked_array(v + 1, mask=np.zeros(v.shape, bool))
               for k, v in _state_dict(model).items()}
    first = next(iter(tensors))
    tensors[first].mask.flat[:3] = True
    with pytest.raises(WeightsError, match=f"{np.ma.count_masked(tensors[first])} masked"):
        load_torch_weights(model, tensors)
    np.testing.assert_array_equal(model.flat_params, before)  # nothing half-loaded
    tensors[first].mask[...] = False  # no masked value: the data is the tensor
    load_torch_weights(model, tensors)
    np.testing.assert_array_equal(model.flat_params, before + 1)


def test_a_bfloat16_tensor_in_a_mapping_gets_the_float32_hint():
    torch = pytest.importorskip("torch")
    from nnumba.torch_import import load_torch_weights
    model = nnumba.build("mlp", seed=0)
    tensors = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in _state_dict(model).items()}
    with pytest.raises(WeightsError, match=r"numpy has no bfloat16.*v\.float\(\)"):
        load_torch_weights(model, tensors)


def test_a_data_set_naming_a_class_twice_is_refused():
    """Two classes under one name would merge in every report by name.  Reference:
    collections.Counter over the names."""
    from collections import Counter

    from nnumba.data import Dataset
    from nnumba.data.check import DatasetError, check_dataset
    x = np.zeros((6, 2), np.float32)
    y = np.arange(6) % 3
    names = ["cat", "dog", "cat"]
    twice = [c for c, k in Counter(names).items() if k > 1]
    with pytest.raises(DatasetError, match=f"{twice[0]!r} more than once"):
        check_dataset(Dataset("d", x, y, x, y, names, ""))
    assert check_dataset(Dataset("d", x, y, x, y, ["cat", "dog", "bird"], "")) is not None


def test_a_pickled_model_holds_each_parameter_once_with_its_gradient():
    """The flat buffers are made again from the parameters on loading: pickling them
    too wrote every value three times (and two more of zero gradients).  Reference: the
    bytes of the values and gradients themselves."""
    model = nnumba.build("lenet", seed=0)
    param_bytes = sum(p.value.nbytes + p.grad.nbytes for _, p in model.params())
    data = pickle.dumps(model)
    assert len(data) < 1.2 * param_bytes
    for twin in (pickle.loads(data), copy.deepcopy(model)):
        np.testing.assert_array_equal(twin.flat_params, model.flat_params)
        assert all(np.shares_memory(p.value, twin.flat_params) for _, p in twin.params())
        x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
        np.testing.assert_array_equal(twin.predict(x), model.predict(x))


@pytest.mark.parametrize("argv", [
    ["train", "--json", "--epochs", "1", "--lr", "1e30", "--train-size", "300",
     "--test-size", "50"],                                       # diverges mid-training
    ["classify", "--json", "--weights", "no-such-weights.npz", "no-such-image.png"],
    ["summary", "--json", "no-such-spec.json"],
    ["experiment", "run", "--json", "no-such-experiment"],
])
def test_with_json_an_error_leaves_stdout_empty_and_says_one_line_on_stderr(argv, capsys,
                                                                            tmp_path,
                                                                            monkeypatch):
    """The README's contract for scripts reading --json: status 2, nothing on stdout, the
    error on stderr, named by its command."""
    from nnumba.cli import main
    monkeypatch.chdir(tmp_path)
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert f"nnumba {argv[0]}: error:" in err


def test_an_idx_file_gzipped_twice_is_named_as_such(tmp_path):
    """Reference: the gzip module itself makes the twice-compressed file; once
    decompressed by hand it reads back as the array."""
    import gzip

    from nnumba.data.idx import IDXError, read_idx, write_idx
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    once = tmp_path / "a.idx.gz"
    write_idx(once, array)
    twice = tmp_path / "b.idx.gz"
    twice.write_bytes(gzip.compress(once.read_bytes()))
    with pytest.raises(IDXError, match="compressed twice"):
        read_idx(twice)
    fixed = tmp_path / "c.idx.gz"
    fixed.write_bytes(gzip.decompress(twice.read_bytes()))
    np.testing.assert_array_equal(read_idx(fixed), array)


@pytest.mark.parametrize("name", ["mlp", "lenet"])
def test_a_pickled_model_holds_none_of_the_samples_it_last_saw(name):
    """A fitted model pickled with the last batch it trained on (the first layer's kept
    input), and after predict with the last samples predicted.  Reference: the raw
    bytes of those samples, searched for in the pickle; and a float pattern no weight
    takes."""
    from nnumba.losses import CrossEntropy
    from nnumba.train import SGDTrainer
    model = nnumba.build(name, seed=0)
    shape = (1, 28, 28) if name == "lenet" else (784,)
    rng = np.random.default_rng(1)
    x = rng.random((40,) + shape, dtype=np.float32)
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.01, batch_size=20, seed=0)
    trainer.progress = False
    trainer.fit(x, np.arange(40) % 10)
    secret = np.full((3,) + shape, 0.123456789, np.float32)
    model.predict(secret)
    for blob in (pickle.dumps(model), pickle.dumps(copy.deepcopy(model))):
        assert secret.reshape(3, -1)[0, :8].tobytes() not in blob
        assert not any(row[:8].tobytes() in blob for row in x.reshape(40, -1))
    twin = pickle.loads(pickle.dumps(model))
    from nnumba.errors import NoGradientError
    with pytest.raises(NoGradientError, match="copied"):  # nothing kept for it
        twin.backward(np.ones((3, 10), np.float32))
    np.testing.assert_array_equal(twin.predict(x), model.predict(x))


def _squared_error_grads(model, x, y, act):
    """dW, db of sum((act(x W^T + b) - y)^2) in closed form (float64)."""
    lin = model.layers[0]
    z = x @ lin.weight.value.T + lin.bias.value
    f = {"Sigmoid": lambda z: 1 / (1 + np.exp(-z)), "Tanh": np.tanh,
         "ReLU": lambda z: np.maximum(z, 0)}[act](z)
    df = {"Sigmoid": f * (1 - f), "Tanh": 1 - f ** 2, "ReLU": (z > 0).astype(float)}[act]
    dz = 2 * (f - y) * df
    return dz.T @ x, dz.sum(axis=0)


@pytest.mark.parametrize("tail", [[], [{"type": "Flatten"}]])
@pytest.mark.parametrize("act", ["Sigmoid", "Tanh", "ReLU"])
def test_writing_into_forwards_output_leaves_the_gradient_right(act, tail):
    """An activation keeps its output for its backward; forward handed the caller that
    same array, so `out -= y; out *= 2; backward(out)` (a squared error's gradient made
    in place) gave wrong weight gradients without a word (fuzz 22).  A Flatten after it
    hands on a view of it.  Reference: the gradient in closed form."""
    rs = np.random.default_rng(0)
    x, y = rs.standard_normal((4, 3)), rs.random((4, 2))
    model = nnumba.build([{"type": "Linear", "in_features": 3, "out_features": 2},
                          {"type": act}, *tail], seed=0).astype(np.float64)
    want_w, want_b = _squared_error_grads(model, x, y, act)
    out = model.forward(x)
    out -= y
    out *= 2
    model.zero_grad()
    model.backward(out)
    np.testing.assert_allclose(model.layers[0].weight.grad, want_w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.layers[0].bias.grad, want_b, rtol=1e-12, atol=1e-12)


def test_writing_into_a_layers_output_leaves_its_gradient_right():
    """The same for a layer called on its own: tanh's backward reads its output."""
    from nnumba.layers import Tanh
    layer = Tanh().astype(np.float64)
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    out = layer.forward(x)
    out[...] = 0.0
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, 1 - np.tanh(x) ** 2, rtol=1e-12)


def test_a_big_endian_gradient_is_named_by_its_byte_order():
    """'got a gradient of dtype float64; the model computes in float64' contradicted
    itself for a '>f8' gradient (fuzz 22)."""
    from nnumba.errors import DTypeError
    model = nnumba.build([{"type": "Linear", "in_features": 3, "out_features": 2}],
                         seed=0).astype(np.float64)
    out = model.forward(np.ones((2, 3)))
    with pytest.raises(DTypeError, match=">f8"):
        model.backward(np.ones(out.shape, ">f8"))


def test_a_convolutional_spec_trains_in_scikit_learn_with_input_shape():
    """A spec whose first layer is a convolution could not be used from scikit-learn:
    2-D X met 'Conv2d expects (1, *, *)', and scikit-learn refuses 4-D X (trial 18).
    input_shape reshapes the rows.  References: numpy's reshape of the rows fed to the
    fitted model, and chance (10 %) on scikit-learn's digits."""
    datasets = pytest.importorskip("sklearn.datasets")
    from nnumba.sklearn import NNClassifier
    X, y = datasets.load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    spec = [{"type": "Conv2d", "in_channels": 1, "out_channels": 8, "kernel_size": 3},
            {"type": "ReLU"}, {"type": "Flatten"},
            {"type": "Linear", "in_features": 8 * 6 * 6, "out_features": 10}]
    clf = NNClassifier(spec, input_shape=(1, 8, 8), epochs=5, lr=0.05,
                       random_state=0).fit(X[:1200], y[:1200])
    assert clf.input_shape_ == (1, 8, 8)
    logits = clf.model_.predict(X[1200:].reshape(-1, 1, 8, 8))
    np.testing.assert_array_equal(clf.predict(X[1200:]), clf.classes_[logits.argmax(1)])
    assert clf.score(X[1200:], y[1200:]) > 0.8
    with pytest.raises(ValueError, match="holds 49 values"):
        NNClassifier(spec, input_shape=(1, 7, 7), epochs=1).fit(X[:50], y[:50])
    for bad in [(1, 0, 8), "1x8x8", (1.0, 8, 8), (True, 8, 8), (1, 1, 1, 8, 8)]:
        with pytest.raises(ValueError, match="input_shape must be"):
            NNClassifier(spec, input_shape=bad, epochs=1).fit(X[:50], y[:50])
    # four axes are a clip's (a Conv3d spec's): a 2-D convolution names the misfit
    with pytest.raises(ValueError, match=r"Conv2d #0 expects per-sample input \(1, \*, \*\)"):
        NNClassifier(spec, input_shape=(1, 1, 8, 8), epochs=1).fit(X[:50], y[:50])


class Doubler(Doubling):
    """y = 2 x, keeping its input under a name of its own (module level: pickled)."""

    def _forward(self, x):
        self._inp = x
        return super()._forward(x)


def test_the_kit_warns_of_an_input_kept_under_a_name_a_copy_would_keep(monkeypatch):
    """A layer keeping its input as `_inp` pickles the samples it last saw; the kit says
    which attribute to name in kept_for_backward.  Reference: the pickle's bytes."""
    import warnings

    from nnumba import testing
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    layer = Doubler()
    layer.forward(x)
    assert x.tobytes() in pickle.dumps(layer)  # the leak the warning is about
    with pytest.warns(UserWarning, match=r"_inp.*kept_for_backward"):
        testing.check_all(Doubler)
    monkeypatch.setattr(Doubler, "kept_for_backward", ("_inp",))
    layer.forward(x)
    assert x.tobytes() not in pickle.dumps(layer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        testing.check_all(Doubler)


def test_training_on_with_another_trainer_starts_a_fresh_momentum(tmp_path, capsys):
    """`nnumba train --model saved.npz --trainer gd` on a run saved by SGD: resume now
    refuses another trainer kind's momentum, so the command says so and trains on from
    the weights alone.  Reference: the saved weights, loaded by hand, as the start."""
    from nnumba.cli import main
    saved = tmp_path / "sgd.npz"
    common = ["--train-size", "200", "--test-size", "50", "--epochs", "1"]
    assert main(["train", *common, "--save", str(saved)]) == 0
    capsys.readouterr()
    again = tmp_path / "gd.npz"
    assert main(["train", *common, "--model", str(saved), "--trainer", "gd", "--lr", "0",
                 "--save", str(again)]) == 0
    out, err = capsys.readouterr()
    assert "was trained by --trainer sgd" in out and "Warning" not in err
    start = nnumba.load_model(saved)  # lr 0: the weights it started from, unchanged
    np.testing.assert_array_equal(nnumba.load_model(again).flat_params, start.flat_params)


def test_a_dropout_pickled_before_p_became_a_property_loads():
    """Its state held p itself and one kept mask (_keep).  Reference: the p it held,
    and the identity in evaluation mode."""
    from nnumba.layers import Dropout
    state = Dropout(0.3).__getstate__()
    state["p"], state["_keep"] = state.pop("_p"), None
    state.pop("_kept")
    old = Dropout.__new__(Dropout)
    old.__setstate__(state)
    assert old.p == 0.3 and old.spec()["p"] == 0.3
    x = np.ones((2, 5), np.float32)
    np.testing.assert_array_equal(old.eval().forward(x), x)
    assert old.train().forward(x).shape == x.shape


def test_summary_gives_the_states_bytes_beside_the_parameters():
    """A layer's state (trainable=False: a batch norm's running statistics) is memory
    the model holds; summary left it out (plugin trials 17 and 19).  Reference: the
    model's own arrays, counted."""
    from test_layer_state import RunningNorm, _model, _Plugin

    from nnumba.summary import summarize
    name = nnumba.register_plugin(_Plugin(), "t-running-norm-summary")
    try:
        model = _model()
        state = sum(p.value.nbytes for _, p in model.params() if not p.trainable)
        trained = sum(p.value.nbytes for _, p in model.params() if p.trainable)
        found = summarize(model, (4,))
        assert (found.param_bytes, found.state_bytes) == (trained, state) == (21 * 4, 6 * 4)
        assert found.to_dict()["total"]["state_bytes"] == state
        assert "24 B of state" in found.format()
        assert RunningNorm in (type(layer) for layer in model.layers)
    finally:
        nnumba.unregister_plugin(name)
