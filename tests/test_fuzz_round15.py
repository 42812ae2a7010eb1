"""Fuzz round 15: average pooling's backward at a stride near 2**63 (its window
arithmetic wrapped past int64 and summed windows that do not hold a pixel), a
safetensors file whose eight or more same-shaped named layers were loaded in a
guessed order, class names that cannot be printed, trainer attributes set after
construction, a write-protected weights file replaced, a spec with a key twice."""
import json
import os
import stat
import warnings

import numpy as np
import pytest

import nnumba
from nnumba.errors import NnumbaError, SaveError, SpecError, WeightsError
from nnumba.layers import AvgPool1d, AvgPool2d, Flatten, Linear
from nnumba.losses import CrossEntropy


@pytest.mark.parametrize("layer, shape", [(AvgPool2d, (1, 1, 5, 7)), (AvgPool1d, (1, 2, 17))])
@pytest.mark.parametrize("stride", [2**63 - 1, 2**62 + 1, 3, 2])
def test_average_pooling_backward_is_the_transpose_of_its_forward_at_any_stride(layer, shape,
                                                                               stride):
    """<dy, forward(x)> = <backward(dy), x> for the linear map avg-pool, wherever the
    stride puts the windows (dx used to collect windows that do not hold the pixel)."""
    rng = np.random.default_rng(stride % 1000)
    x = rng.standard_normal(shape)
    model = nnumba.Sequential(layer(kernel_size=2, stride=stride)).astype(np.float64)
    model.input_grad = True
    y = model.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = model.backward(dy)
    assert np.isclose(np.vdot(dy, y), np.vdot(dx, x), rtol=1e-12, atol=1e-12)
    # every pixel outside the windows gets nothing; each inside one gets dy / window
    window = 4 if layer is AvgPool2d else 2
    assert np.isclose(dx.sum(), dy.sum(), rtol=1e-12) and (dx != 0).sum() == y.size * window


def _named_chain(torch, widths, bias):
    from collections import OrderedDict
    names = "hgfedcba"[:len(widths) - 1]  # module order is not the sorted one
    return torch.nn.Sequential(OrderedDict(
        (n, torch.nn.Linear(a, b, bias=bias)) for n, a, b in zip(names, widths, widths[1:])))


@pytest.mark.parametrize("bias", [False, True])
def test_eight_same_shaped_named_modules_in_a_safetensors_file_are_refused(tmp_path, bias):
    """8! orders are too many to try: the alphabetical one was loaded, and with equal
    shapes it fits, silently wrong (or, with biases, blamed a shape)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    from nnumba.torch_import import load_torch_weights
    torch.manual_seed(0)
    net = _named_chain(torch, [6] * 9, bias)
    path = tmp_path / "named.safetensors"
    save_file(net.state_dict(), str(path))
    model = nnumba.Sequential(*[Linear(6, 6, bias=bias) for _ in range(8)])
    before = model.flat_params.copy()
    with pytest.raises(WeightsError, match="order"):
        load_torch_weights(model, path)
    np.testing.assert_array_equal(model.flat_params, before)


def test_eight_named_modules_of_distinct_shapes_out_of_sorted_order_say_to_use_npz(tmp_path):
    """Their order is not tried (8! of them): the shape the sorted order misfits is
    named, and so is the way out."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    from nnumba.torch_import import load_torch_weights
    widths = [3, 4, 5, 6, 7, 8, 9, 10, 2]
    path = tmp_path / "named.safetensors"
    save_file(_named_chain(torch, widths, True).state_dict(), str(path))
    model = nnumba.Sequential(*[Linear(a, b) for a, b in zip(widths, widths[1:])])
    with pytest.raises(WeightsError, match=r"has shape .* 40,320 orders.* export to .npz"):
        load_torch_weights(model, path)


# ---- class names no text can hold, and names that would drive the terminal ----------

def _digits_model():
    return nnumba.Sequential(Flatten(), Linear(784, 10), seed=0)


def test_save_refuses_a_class_name_no_text_can_hold(tmp_path):
    with pytest.raises(SaveError, match="characters text can hold"):
        nnumba.save(_digits_model(), tmp_path / "m.npz", input_shape=(1, 28, 28),
                    classes=["\ud800"] + [str(i) for i in range(1, 10)])
    assert not (tmp_path / "m.npz").exists()


def test_a_file_edited_to_hold_one_is_refused_naming_it(tmp_path, capsys):
    from nnumba.cli import main
    path = nnumba.save(_digits_model(), tmp_path / "m.npz", input_shape=(1, 28, 28),
                       classes=[str(i) for i in range(10)])
    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["__nnumba_spec__"]))
    meta["classes"][0] = "\ud800"
    arrays["__nnumba_spec__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    assert main(["train", "--model", str(path), "--epochs", "1", "--train-size", "30",
                 "--test-size", "10", "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "m.npz" in err and "codec" not in err and "Traceback" not in err


def test_an_npz_data_file_with_such_a_class_name_is_refused_naming_it(tmp_path):
    from nnumba.data import load_arrays
    from nnumba.data.arrays import DataFileError
    x = np.random.default_rng(0).random((40, 2)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.array(["\ud800x", "b"] * 20))
    with pytest.raises(DataFileError, match=r"d.npz.*lone surrogate"):
        load_arrays(tmp_path / "d.npz")


def test_train_writes_control_characters_of_class_names_as_escapes(tmp_path, capsys):
    from nnumba.cli import main
    x = np.random.default_rng(0).random((40, 2)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.array(["\x1b[31mred", "b\u202e"] * 20))
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "1", "--loss",
                 "Hinge", "--classes", "b,x"]) != 0
    err = capsys.readouterr().err
    assert "\\x1b[31mred" in err and "\\u202e" in err
    assert "\x1b" not in err and "\u202e" not in err
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "1",
                 "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "\x1b" not in out.out + out.err


# ---- trainer attributes set after construction ------------------------------------

def _trainer():
    model = nnumba.Sequential(Linear(4, 3), seed=0)
    return nnumba.SGDTrainer(model, CrossEntropy(), lr=0.1, batch_size=10, seed=0)


@pytest.mark.parametrize("attr, value", [("callbacks", [lambda: None]), ("callbacks", None),
                                         ("callbacks", [print, 3]), ("loss", "CrossEntropy"),
                                         ("loss", CrossEntropy)])
def test_a_bad_loss_or_callback_set_later_is_refused_when_set(attr, value):
    trainer = _trainer()
    with pytest.raises(NnumbaError, match=attr):
        setattr(trainer, attr, value)


def test_a_callback_appended_later_is_refused_before_any_update():
    x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    trainer = _trainer()
    before = trainer.model.flat_params.copy()
    trainer.callbacks.append(lambda: None)  # a list: not seen by the setter
    with pytest.raises(NnumbaError, match="callbacks"):
        trainer.fit(x, np.arange(50) % 3, epochs=2)
    np.testing.assert_array_equal(trainer.model.flat_params, before)


def test_trainer_lr_is_the_optimizers_and_a_schedule_in_a_callback_takes_effect():
    """trainer.lr = 0 used to make an attribute nothing read; now it is SGD's lr: the
    run matches one whose optimizer was given the same rates epoch by epoch."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 4)).astype(np.float32), np.arange(50) % 3
    halving = _trainer()
    halving.callbacks = [lambda t, row: setattr(t, "lr", t.lr * 0.5)]
    halving.fit(x, y, epochs=3)
    by_hand = _trainer()
    for lr in (0.1, 0.05, 0.025):
        by_hand.optimizer.lr = lr
        by_hand.fit(x, y, epochs=1)
    np.testing.assert_array_equal(halving.model.flat_params, by_hand.model.flat_params)
    assert halving.lr == halving.optimizer.lr == 0.0125
    with pytest.raises(SpecError, match="momentum"):
        halving.momentum = 1.5  # SGD's own check
    frozen = _trainer()
    frozen.lr = 0.0
    before = frozen.model.flat_params.copy()
    frozen.fit(x, y, epochs=1)
    np.testing.assert_array_equal(frozen.model.flat_params, before)


# ---- a write-protected weights file ----------------------------------------------

def test_a_write_protected_weights_file_is_refused_or_keeps_its_protection(tmp_path,
                                                                           monkeypatch):
    path = nnumba.save(nnumba.Sequential(Linear(4, 3), seed=0), tmp_path / "w.npz")
    os.chmod(path, 0o444)
    # root may write it: it is replaced, and stays read-only
    monkeypatch.setattr(os, "access", lambda p, mode: True)
    nnumba.save(nnumba.Sequential(Linear(4, 3), seed=1), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444
    assert not np.array_equal(nnumba.load_model(path).flat_params,
                              nnumba.Sequential(Linear(4, 3), seed=0).flat_params)
    # anyone else: refused, the file as it was
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    before = path.read_bytes()
    with pytest.raises(SaveError, match="write-protected"):
        nnumba.save(nnumba.Sequential(Linear(4, 3), seed=2), path)
    assert path.read_bytes() == before


# ---- smaller -------------------------------------------------------------------------

def test_the_perceptron_classifiers_one_class_message_shows_the_class():
    pytest.importorskip("sklearn")
    from nnumba.sklearn import PerceptronClassifier
    x = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError, match=r"one class, 0\.0$"):
        PerceptronClassifier().fit(x, np.zeros(20))


def test_a_json_spec_with_a_key_twice_is_refused_naming_the_key(tmp_path, capsys):
    from nnumba.cli import main
    from nnumba.errors import JSONFileError
    from nnumba.jsonfile import parse_json
    text = '[{"type": "Linear", "in_features": 4, "out_features": 10, "in_features": 5}]'
    with pytest.raises(JSONFileError, match="'in_features' appears twice"):
        parse_json(text, "dup.json")
    (tmp_path / "dup.json").write_text(text)
    assert main(["summary", str(tmp_path / "dup.json")]) != 0
    assert "'in_features' appears twice" in capsys.readouterr().err
    assert parse_json('{"a": {"b": 1}, "b": [{"a": 2}]}', "ok") == {"a": {"b": 1}, "b": [{"a": 2}]}


def test_warm_start_refits_only_on_the_same_classes_as_scikit_learn_does():
    """NNClassifier(warm_start=True) refitted on two of its three classes kept three
    outputs and could predict a class the new y never has; MLPClassifier refuses."""
    pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPClassifier

    from nnumba.sklearn import NNClassifier
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    three, two = np.arange(60) % 3, np.arange(60) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its ConvergenceWarning after 5 iterations
        peer = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, warm_start=True).fit(x, three)
    with pytest.raises(ValueError, match="same classes") as theirs:
        peer.fit(x, two)
    ours = NNClassifier(model="logreg", epochs=1, warm_start=True).fit(x, three)
    before = ours.model_.flat_params.copy()
    with pytest.raises(ValueError, match="same classes"):
        ours.fit(x, two)
    np.testing.assert_array_equal(ours.model_.flat_params, before)
    assert theirs.value is not None
    ours.fit(x, three[::-1].copy())  # the same classes in another order: trains on
    assert not np.array_equal(ours.model_.flat_params, before)
