"""Fuzz round 10 (training on, Ctrl-C, sign models): each test fails on the code
before its fix, and checks against the model itself or an independent run."""
import json

import numpy as np
import pytest

import nnumba
from nnumba import io
from nnumba.cli import main
from nnumba.data import load_dataset

TWO = ["--classes", "0,1", "--train-size", "600", "--test-size", "200", "--no-progress"]


def test_a_sign_model_saves_its_two_classes_and_classify_names_the_one_its_sign_chooses(
        tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image
    for how in (["--loss", "Hinge", "--epochs", "3"], ["--trainer", "perceptron"]):
        saved = tmp_path / "m.npz"
        assert main(["train", *how, *TWO, "--save", str(saved)]) == 0
        assert io.stored_info(saved)["classes"] == ["0", "1"]  # -1, +1
        data = load_dataset("mnist-5k")
        for digit in (0, 1):
            pixels = data.x_test[data.y_test == digit][0].reshape(28, 28)
            Image.fromarray((pixels * 255).astype(np.uint8)).save(tmp_path / "d.png")
            capsys.readouterr()
            assert main(["classify", str(tmp_path / "d.png"), "--weights", str(saved),
                         "--json"]) == 0
            top = json.loads(capsys.readouterr().out)["top"]
            assert len(top) == 1 and top[0]["label"] == str(digit)  # was "class 0" for both
            assert (top[0]["score"] >= 0) == (digit == 1)


def test_training_a_sign_model_on_with_the_classes_swapped_keeps_their_meaning(tmp_path,
                                                                               capsys):
    saved, again = tmp_path / "m.npz", tmp_path / "again.npz"
    assert main(["train", "--loss", "Hinge", "--epochs", "3", *TWO, "--save", str(saved),
                 "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["test_accuracy"]
    swapped = [*TWO[:1], "1,0", *TWO[2:]]
    assert main(["train", "--loss", "Hinge", "--model", str(saved), "--lr", "0", "--epochs",
                 "1", *swapped, "--save", str(again), "--json"]) == 0
    # was 1 - first: "1" became the -1 class the model scores as "0"
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == first
    assert io.stored_info(again)["classes"] == ["0", "1"]


def test_a_float64_saved_model_trains_on_from_the_command_line(tmp_path):
    saved = io.save(nnumba.build("mlp", seed=0).astype(np.float64), tmp_path / "m.npz",
                    input_shape=(1, 28, 28), classes=[str(d) for d in range(10)])
    again = tmp_path / "again.npz"
    # was: the data are float32, "use x.astype(np.float64)", after the data loaded
    assert main(["train", "--model", str(saved), "--epochs", "1", "--train-size", "200",
                 "--no-progress", "--save", str(again)]) == 0
    assert io.load_model(again).dtype == np.float64


def test_a_saved_perceptron_says_it_cannot_train_on(tmp_path, capsys):
    saved = tmp_path / "p.npz"
    assert main(["train", "--trainer", "perceptron", *TWO, "--save", str(saved)]) == 0
    capsys.readouterr()
    assert main(["train", "--model", str(saved), "--no-progress"]) == 2
    err = capsys.readouterr().err  # was: "train it with the perceptron trainer", which refused
    assert "a saved perceptron (no gradient)" in err and "--trainer perceptron" in err


class _Doubled(nnumba.layers.Linear):
    """An unregistered subclass keeping the built-in's type_name."""
    type_name = "Linear"

    def _forward(self, x):
        y = super()._forward(x)
        y *= 2
        return y


def test_a_file_of_an_unregistered_class_says_so_instead_of_loading_another(tmp_path):
    model = nnumba.Sequential(_Doubled(3, 2), seed=0)
    path = io.save(model, tmp_path / "m.npz")
    # was: load_model built the plain Linear, whose outputs are half the model's
    with pytest.raises(nnumba.WeightsError, match=r"layer #0 was .*_Doubled, a class no "
                                                  r"plugin registers"):
        io.load_model(path)
    twin = nnumba.Sequential(_Doubled(3, 2), seed=1)
    io.load_weights(twin, path)  # built in code, the weights still load
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(twin.predict(x), model.predict(x))
    plain = io.save(nnumba.Sequential(nnumba.layers.Linear(3, 2), seed=0), tmp_path / "p.npz")
    assert type(io.load_model(plain).layers[0]) is nnumba.layers.Linear
