"""A saved model keeps the names of the classes its outputs score: `nnumba train
--save` stores the data set's, and `nnumba classify` prints them."""
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import nnumba
from nnumba import io
from nnumba.cli import main
from nnumba.errors import SaveError, ShapeError, WeightsError


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_class_names_round_trip_and_a_plain_save_has_none(tmp_path):
    model = nnumba.build("mlp", seed=0)
    names = ["T-shirt", "Trouser", 2, np.int64(3)] + [f"c{i}" for i in range(4, 10)]
    path = io.save(model, tmp_path / "m.npz", classes=names, input_shape=(1, 28, 28))
    assert io.stored_info(path) == {"classes": ["T-shirt", "Trouser", "2", "3"] + names[4:],
                                    "input_shape": (1, 28, 28)}
    assert io.stored_info(io.save(model, tmp_path / "plain.npz")) == \
        {"classes": None, "input_shape": None}
    twin = io.load_model(path)  # the weights load as before
    np.testing.assert_array_equal(twin.flat_params, model.flat_params)


@pytest.mark.parametrize("classes", ["0123456789", ["a", "a"], ["a", ""], [None], [True],
                                     np.zeros((2, 5)), 7, (c for c in "ab")])
def test_bad_class_names_are_refused_before_anything_is_written(tmp_path, classes):
    with pytest.raises(SaveError, match="classes"):
        io.save(nnumba.build("mlp"), tmp_path / "m.npz", classes=classes)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("shape, error", [((3, 28, 28), ShapeError), ((784, 2.0), SaveError),
                                          ("1,28,28", SaveError), ((-1, 28), SaveError)])
def test_an_input_shape_the_model_cannot_take_is_refused(tmp_path, shape, error):
    with pytest.raises(error):
        io.save(nnumba.build("mlp"), tmp_path / "m.npz", input_shape=shape)
    assert not list(tmp_path.iterdir())


def test_class_names_must_match_the_outputs_where_the_input_shape_says(tmp_path):
    with pytest.raises(SaveError, match="3 classes for a model whose output per sample "
                                        r"has shape \(10,\)"):
        io.save(nnumba.build("mlp"), tmp_path / "m.npz", classes=list("abc"), input_shape=(784,))


def test_edited_stored_classes_are_a_weights_error(tmp_path):
    path = io.save(nnumba.build("mlp"), tmp_path / "m.npz", classes=list("abcdefghij"))
    with zipfile.ZipFile(path) as z:
        arrays = {n[:-4]: np.load(z.open(n)) for n in z.namelist()}
    meta = json.loads(str(arrays["__nnumba_spec__"]))
    for key, value in (("classes", ["a", 5, {"x": 1}]), ("input_shape", "28x28")):
        arrays["__nnumba_spec__"] = np.array(json.dumps({**meta, key: value}))
        np.savez(path, **arrays)
        with pytest.raises(WeightsError, match=f"stored {key}"):
            io.stored_info(path)


def test_train_saves_the_data_sets_classes_and_classify_prints_them(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image
    saved = tmp_path / "lin.npz"
    code, out, _ = _run(capsys, "train", "--model", "logreg", "--epochs", "1",
                        "--train-size", "200", "--test-size", "50", "--save", saved, "--json")
    assert code == 0, out
    assert io.stored_info(saved) == {"classes": [str(d) for d in range(10)],  # mnist-5k's
                                     "input_shape": (1, 28, 28)}
    model = io.load_model(saved)
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(tmp_path / "digit.png")
    code, out, err = _run(capsys, "classify", tmp_path / "digit.png", "--model", saved,
                          "--weights", saved, "--top", 3, "--json")  # the stored size
    assert code == 0, err
    scores = model.predict(np.full((1, 1, 28, 28), 200 / 255, np.float32))[0]  # as trained
    top = json.loads(out)["top"]
    assert [t["index"] for t in top] == list(np.argsort(-scores, kind="stable")[:3])
    assert [t["label"] for t in top] == [str(t["index"]) for t in top]


def test_a_loss_on_signs_saves_its_negative_and_positive_class(tmp_path, capsys):
    saved = tmp_path / "hinge.npz"
    code, out, _ = _run(capsys, "train", "--model", "logreg", "--loss", "Hinge", "--epochs",
                        "1", "--train-size", "200", "--test-size", "50", "--save", saved,
                        "--json")
    assert code == 0, out
    assert io.stored_info(saved)["classes"] == ["0", "1"]  # one output: its sign chooses


def test_stored_names_that_do_not_fit_the_outputs_are_refused_by_classify(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image
    saved = io.save(nnumba.build("lenet"), tmp_path / "lenet.npz")  # then edited:
    arrays = dict(np.load(saved))
    meta = json.loads(str(arrays["__nnumba_spec__"]))
    arrays["__nnumba_spec__"] = np.array(json.dumps({**meta, "classes": ["a", "b"]}))
    np.savez(saved, **arrays)
    Image.fromarray(np.full((28, 28), 9, np.uint8)).save(tmp_path / "digit.png")
    code, _, err = _run(capsys, "classify", tmp_path / "digit.png", "--model", saved,
                        "--weights", saved, "--size", "28,28")
    assert code == 2 and "2 stored class names do not match the model's 10 outputs" in err


def test_a_model_loaded_without_its_plugin_names_the_distribution_to_install(tmp_path):
    pytest.importorskip("nnumba_extra_activations")
    model = nnumba.build([{"type": "Linear", "in_features": 3, "out_features": 2},
                          {"type": "LeakyReLU"}])
    path = io.save(model, tmp_path / "leaky.npz")
    load = f"import nnumba; nnumba.load_model({str(path)!r})"
    done = subprocess.run([sys.executable, "-c", load],
                          env={**os.environ, "NNUMBA_DISABLE_PLUGIN_AUTOLOAD": "1"},
                          capture_output=True, text=True, timeout=120)
    assert "unknown layer 'LeakyReLU'" in done.stderr
    assert "its layers came from nnumba-extra-activations 0.1.0 (LeakyReLU)" in done.stderr


def test_invert_classifies_a_dark_on_light_picture_as_its_light_on_dark_negative(tmp_path,
                                                                                 capsys):
    pytest.importorskip("PIL")
    from PIL import Image
    saved = io.save(nnumba.build("logreg", seed=3), tmp_path / "lin.npz",
                    classes=list("abcdefghij"), input_shape=(1, 28, 28))
    ink = np.full((28, 28), 240, np.uint8)  # pale paper, a dark stroke
    ink[4:24, 12:16] = 20
    Image.fromarray(ink).save(tmp_path / "ink.png")
    code, out, err = _run(capsys, "classify", tmp_path / "ink.png", "--weights", saved,
                          "--invert", "--top", 10, "--json")
    assert code == 0, err
    scores = io.load_model(saved).predict(1 - ink[None, None] / np.float32(255))[0]
    top = json.loads(out)["top"]
    assert [t["index"] for t in top] == list(np.argsort(-scores, kind="stable"))
    np.testing.assert_allclose([t["score"] for t in top], np.sort(scores)[::-1], rtol=1e-5)


def test_classify_refuses_a_model_trained_on_a_table_and_says_why(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image
    saved = io.save(nnumba.build("mlp", inputs=4, hidden=[3], classes=2, seed=0),
                    tmp_path / "tab.npz", classes=["no", "yes"], input_shape=(4,))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    code, out, err = _run(capsys, "classify", tmp_path / "x.png", "--weights", saved)
    assert code == 2 and not out
    assert "inputs of shape (4,), not images" in err and "--size" not in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("option", [None, "none", "lecture"])
def test_a_saved_model_sees_the_unit_pixels_it_was_trained_on_unless_told(tmp_path, capsys,
                                                                          option):
    # nnumba's image data sets give [0, 1] pixels: the lecture's per-image standardising
    # (AlexNet's demo) moved an MNIST MLP from 91 % to 83 % on its own test set
    pytest.importorskip("PIL")
    from PIL import Image
    from nnumba.commands.classify import normalise
    from nnumba.data.datasets import load_embedded_mnist
    digit = np.round(load_embedded_mnist().x_test[0, 0] * 255).astype(np.uint8)
    Image.fromarray(digit).save(tmp_path / "digit.png")
    model = nnumba.build("mlp", seed=1)
    saved = io.save(model, tmp_path / "m.npz", input_shape=(1, 28, 28))
    extra = [] if option is None else ["--normalise", option]
    code, out, err = _run(capsys, "classify", tmp_path / "digit.png", "--weights", saved,
                          "--top", 10, "--json", *extra)
    assert code == 0, err
    pixels = (digit / np.float32(255))[None, None]
    scores = model.predict(normalise(pixels) if option == "lecture" else pixels)[0]
    top = json.loads(out)["top"]
    np.testing.assert_allclose([t["score"] for t in top], np.sort(scores)[::-1], rtol=1e-5)
