"""`nnumba train` on a user's own files (--data), with model options, spec-file
errors and refused settings: what trains reports an honest accuracy, and what
cannot run exits 2 with one line on stderr naming what was wrong."""
import csv
import json

import numpy as np
import pytest

import nnumba
from nnumba.cli import main
from nnumba.commands.train import model_for_data
from nnumba.data import load_dataset
from nnumba.errors import ShapeError
from nnumba.layers import Linear, ReLU


def _blobs(n_per_class=60, seed=0):
    """Three well-separated Gaussian blobs in 5-D: any sane classifier gets ~100 %."""
    rng = np.random.default_rng(seed)
    centres = np.array([[4, 0, 0, 0, 0], [0, 4, 0, 0, 0], [0, 0, 4, 0, 0]], float)
    x = np.concatenate([c + rng.normal(size=(n_per_class, 5)) for c in centres])
    return x, np.repeat([0, 1, 2], n_per_class)


def _run(capsys, *args):
    code = main(["train", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _fails(capsys, *args):
    code, out, err = _run(capsys, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnumba train: error: "), err
    return lines[0]


def test_npz_trains_and_reports_test_accuracy(tmp_path, capsys):
    digits = load_dataset("mnist-5k")
    path = tmp_path / "digits.npz"  # flat rows of 784 pixels, the file's own test set
    np.savez(path, x_train=digits.x_train[:1000].reshape(1000, -1), y_train=digits.y_train[:1000],
             x_test=digits.x_test[:300].reshape(300, -1), y_test=digits.y_test[:300])
    code, out, _ = _run(capsys, "--data", path, "--epochs", 5, "--json")
    result = json.loads(out)
    assert code == 0 and result["dataset"] == "digits" and result["epochs"] == 5
    assert result["test_accuracy"] > 0.8  # the MLP on 1,000 digits, 5 epochs


def test_csv_with_named_classes_trains_on_a_stratified_split(tmp_path, capsys):
    x, y = _blobs()
    path = tmp_path / "blobs.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", "a", "b", "c", "d", "e"])
        writer.writerows([[("red", "green", "blue")[c], *row] for row, c in zip(x, y)])
    code, out, _ = _run(capsys, "--data", path, "--label-column", "kind", "--test-fraction",
                        0.25, "--model-option", "hidden=[16]", "--epochs", 10, "--lr", 0.05)
    assert code == 0
    assert "135 train / 45 test" in out  # 15 of each class's 60 held out
    # mlp adapted to 5 inputs and 3 classes, one hidden layer of 16: (5*16+16) + (16*3+3)
    assert "147 parameters" in out
    assert "defaults: momentum 0.9, batch_size 100 (mlp's train_defaults)" in out
    accuracy = float(out.strip().splitlines()[-1].split()[2].rstrip("%"))
    assert accuracy >= 95


def test_a_named_model_with_an_option_and_a_reshape(tmp_path, capsys):
    # LeNet takes 1x28x28; 784-pixel rows are reshaped to it, and classes=5 fits 5 classes.
    digits = load_dataset("mnist-5k")
    keep = digits.y_train < 5
    path = tmp_path / "five.npz"
    np.savez(path, x_train=digits.x_train[keep][:100].reshape(100, -1),
             y_train=digits.y_train[keep][:100])
    code, out, _ = _run(capsys, "--data", path, "--model", "lenet", "--model-option",
                        "classes=5", "--epochs", 1)
    assert code == 0 and "inputs reshaped from (784,) to (1, 28, 28)" in out
    assert "test accuracy" in out
    line = _fails(capsys, "--data", path, "--model", "lenet", "--model-option", "classes=3")
    assert "gives outputs of shape (3,)" in line and "needs (5,)" in line
    line = _fails(capsys, "--data", path, "--model", "lenet", "--model-option", "clases=5")
    assert "model 'lenet' has no option clases; its options: classes" in line


def test_model_for_data_adapts_named_models_and_checks_the_rest():
    mlp, shape = model_for_data("mlp", (5,), 3, options={"hidden": [8]})
    assert shape == (5,)
    assert [(l["in_features"], l["out_features"]) for l in mlp.spec() if l["type"] == "Linear"] \
        == [(5, 8), (8, 3)]
    _, shape = model_for_data("lenet", (784,), 10)
    assert shape == (1, 28, 28)
    with pytest.raises(ShapeError, match=r"takes samples of shape \(1, 28, 28\) \(784 values\); "
                                         r"the data's have shape \(64,\) \(64 values\)"):
        model_for_data("lenet", (64,), 10)
    with pytest.raises(ShapeError, match="expects per-sample input"):
        model_for_data([{"type": "Linear", "in_features": 4, "out_features": 2}], (5,), 2)
    layers = [Linear(5, 4), ReLU(), Linear(4, 3)]
    before = layers[0].weight.value.copy()
    net, _ = model_for_data(layers, (5,), 3, seed=1)
    assert net.layers[0] is not layers[0]  # the caller's layers stay as they were
    np.testing.assert_array_equal(layers[0].weight.value, before)


class _TinyModel:
    """A plugin model with no train_defaults and no input shape."""

    @nnumba.hookimpl
    def nnumba_register_models(self):
        def tiny(classes: int = 10):
            return [{"type": "Flatten"}, {"type": "Linear", "in_features": 784,
                                          "out_features": classes}]
        return {"tiny-test": tiny}


def test_the_defaults_that_apply_are_said(capsys):
    name = nnumba.register_plugin(_TinyModel())
    try:
        code, out, _ = _run(capsys, "--model", "tiny-test", "--train-size", 200)
    finally:
        nnumba.unregister_plugin(name)
    assert code == 0
    assert ("defaults: epochs 10, lr 0.05, momentum 0.9, batch_size 100, loss CrossEntropy "
            "(nnumba's fallback)") in out
    assert "epoch 10/10" in out


class _LossModel:
    """Plugin models that name their loss: MSE (one-hot targets, one output per
    class) and one that is not registered."""

    @nnumba.hookimpl
    def nnumba_register_models(self):
        from nnumba.models import NamedModel

        def tiny(classes: int = 10):
            return [{"type": "Flatten"}, {"type": "Linear", "in_features": 784,
                                          "out_features": classes}]
        return {"tiny-mse": NamedModel(tiny, train_defaults={"loss": "MSE", "lr": 0.01}),
                "tiny-typo": NamedModel(tiny, train_defaults={"loss": "MSEE"})}


def test_a_model_names_its_loss_and_the_command_line_wins(capsys):
    name = nnumba.register_plugin(_LossModel())
    small = ("--train-size", 100, "--epochs", 1)
    try:
        code, out, _ = _run(capsys, "--model", "tiny-mse", *small)
        code2, out2, _ = _run(capsys, "--model", "tiny-mse", *small, "--loss", "CrossEntropy")
        code3, _, err3 = _run(capsys, "--model", "tiny-typo")
    finally:
        nnumba.unregister_plugin(name)
    assert code == code2 == 0
    assert "lr 0.01, loss MSE (tiny-mse's train_defaults)" in out
    assert "targets for MSE: the class labels one-hot" in out
    # MSE on one-hot targets of 10 classes starts near 0.1 a value (outputs near 0);
    # cross-entropy over 10 classes near log 10 = 2.3
    assert float(out.split("train_loss ")[1].split()[0]) < 0.5
    assert float(out2.split("train_loss ")[1].split()[0]) > 1.0
    assert "targets for" not in out2  # CrossEntropy takes the labels
    assert code3 == 2 and "tiny-typo's train_defaults name" in err3 and "MSEE" in err3
    assert "Traceback" not in err3


def test_train_defaults_are_checked_where_the_model_is_named():
    from nnumba.errors import SpecError
    from nnumba.models import NamedModel
    with pytest.raises(SpecError, match="no setting learning_rate; its settings: epochs"):
        NamedModel(lambda: [], train_defaults={"learning_rate": 0.1})
    with pytest.raises(SpecError, match="train_defaults loss must be a registered loss name"):
        NamedModel(lambda: [], train_defaults={"loss": None})
    with pytest.raises(SpecError, match="train_defaults momentum must be"):
        NamedModel(lambda: [], train_defaults={"momentum": 1.5})


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--epochs", "-3", "--trainer", "perceptron"], "--epochs must be >= 1, got -3"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--test-fraction", "0.3"], "apply to --data FILE only"),
    (["--data", "x.npz", "--dataset", "mnist"], "drop --dataset"),
    (["--model-option", "classes"], "takes KEY=VALUE"),
])
def test_settings_that_cannot_run_are_refused(capsys, args, fragment):
    assert fragment in _fails(capsys, *args)


def test_bad_data_files_are_named(tmp_path, capsys):
    np.savez(tmp_path / "nan.npz", x_train=np.array([[np.nan, 1.0]] * 4), y_train=[0, 1, 0, 1])
    line = _fails(capsys, "--data", tmp_path / "nan.npz")
    assert "nan.npz: x_train holds 4 NaN or infinite value(s)" in line
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,x\n3,oops,y\n")
    line = _fails(capsys, "--data", tmp_path / "t.csv")
    assert "t.csv: line 3, column 'b' holds 'oops', not a number" in line
    line = _fails(capsys, "--data", tmp_path / "missing.csv")
    assert "missing.csv does not exist" in line


SPEC_FILES = {
    "empty": ("", "empty"),
    "malformed": ('[{"type": "Linear",}', "not valid JSON"),
    "deep": ("[" * 100_000 + "]" * 100_000, "nested deeper"),
    "not-a-list": ('{"type": "Flatten"}', "non-empty list of layer dicts"),
    "empty-list": ("[]", "got []"),
    "not-dicts": ("[1, 2]", "item #0"),
    "missing-argument": ('[{"type": "Flatten"}, {"type": "Linear", "in_features": 784}]',
                         "out_features"),
    "unknown-keyword": ('[{"type": "Flatten"}, {"type": "Linear", "in_features": 784, '
                        '"out_features": 10, "bogus": 1}]', "bogus"),
    "unknown-type": ('[{"type": "Lineer"}]', "Lineer"),
    "non-string-type": ('[{"type": 5}]', ""),
    "dict-type": ('[{"type": {"a": 1}}]', ""),
    "null-size": ('[{"type": "Flatten"}, {"type": "Linear", "in_features": null, '
                  '"out_features": 10}]', ""),
    "wrong-input": ('[{"type": "Flatten"}, {"type": "Linear", "in_features": 64, '
                    '"out_features": 10}]', "receives (784,)"),
    "wrong-output": ('[{"type": "Flatten"}, {"type": "Linear", "in_features": 784, '
                     '"out_features": 3}]', "needs (10,)"),
}


@pytest.mark.parametrize("name", SPEC_FILES)
def test_a_bad_spec_file_is_one_line_naming_the_file(tmp_path, capsys, name):
    text, fragment = SPEC_FILES[name]
    path = tmp_path / f"{name}.json"
    path.write_text(text)
    line = _fails(capsys, "--model", path, "--epochs", 1, "--train-size", 100)
    assert f"model spec {path}: " in line and fragment in line


def test_a_spec_file_that_is_not_text(tmp_path, capsys):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00[")
    assert "not UTF-8 text" in _fails(capsys, "--model", path)


def test_train_defaults_of_infinite_or_nan_values_are_a_spec_error():
    from nnumba.errors import SpecError
    from nnumba.models import NamedModel
    # the checks of every setting ran on each value: int(inf) raised OverflowError
    for settings in ({"lr": float("inf")}, {"momentum": float("nan")},
                     {"epochs": float("inf")}):
        with pytest.raises(SpecError, match="train_defaults"):
            NamedModel(lambda: [], train_defaults=settings)
