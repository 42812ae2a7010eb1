"""`nnumba train --loss NAME` for every kind of target a loss takes: the data sets'
class labels as labels (CrossEntropy), as -1/+1 for two classes (Hinge, Logistic)
or one-hot (MSE); the printed accuracy checked against the saved model's own
predictions, computed here with numpy."""
import json

import numpy as np
import pytest

import nnumba
from nnumba.cli import main
from nnumba.data import load_dataset
from nnumba.train import accuracy


def _train(capsys, *args):
    code = main(["train", "--train-size", "1000", "--test-size", "300", "--json", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), captured.err


def test_a_loss_on_values_takes_the_labels_one_hot(tmp_path, capsys):
    result, said = _train(capsys, "--loss", "MSE", "--epochs", "3", "--lr", "0.05",
                          "--save", str(tmp_path / "w.npz"))
    assert "targets for MSE: the class labels one-hot (10 values per sample)" in said
    assert "1000 train / 300 test" in said
    data = load_dataset("mnist-5k")
    x, y = data.x_test[:300], data.y_test[:300]
    pred = nnumba.load_model(tmp_path / "w.npz").predict(x).argmax(axis=1)
    assert result["test_accuracy"] == pytest.approx(np.mean(pred == y))
    assert result["test_accuracy"] > 0.6  # chance is 0.1
    losses = [row["train_loss"] for row in result["history"]]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("loss", ["Hinge", "Logistic"])
def test_a_loss_on_signs_takes_the_two_classes_of_classes(tmp_path, capsys, loss):
    result, said = _train(capsys, "--model", "logreg", "--loss", loss, "--classes", "3,8",
                          "--epochs", "3", "--save", str(tmp_path / "w.npz"))
    assert f"targets for {loss}: class 3 -> -1, class 8 -> +1" in said
    data = load_dataset("mnist-5k")
    keep = np.isin(data.y_test[:300], (3, 8))
    model = nnumba.load_model(tmp_path / "w.npz")
    assert model.spec()[-1]["out_features"] == 1
    scores = model.predict(data.x_test[:300][keep]).reshape(-1)
    truth = np.where(data.y_test[:300][keep] == 8, 1, -1)
    assert result["test_accuracy"] == pytest.approx(np.mean(np.where(scores >= 0, 1, -1) == truth))
    assert result["test_accuracy"] > 0.85


@pytest.mark.parametrize("flag", ["--test-size", "--train-size"])
def test_a_size_below_one_is_refused_before_anything_loads(capsys, flag):
    assert main(["train", flag, "0"]) == 2
    assert f"{flag} must be >= 1, got 0" in capsys.readouterr().err


def test_accuracy_of_one_hot_targets_is_that_of_their_labels():
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(50, 4)), rng.integers(0, 4, 50)
    expected = np.mean(scores.argmax(axis=1) == labels)
    assert accuracy(scores, np.eye(4)[labels]) == pytest.approx(expected)
    assert accuracy(scores, labels) == pytest.approx(expected)
    assert accuracy(scores, rng.normal(size=(50, 4))) is None  # regression targets


def test_the_same_class_twice_in_classes_is_named_as_given(capsys):
    code = main(["train", "--model", "logreg", "--loss", "Hinge", "--classes", "3, 3"])
    err = capsys.readouterr().err
    assert code == 2 and "--classes: the two classes must differ, got '3, 3'" in err
