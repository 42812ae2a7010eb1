"""Fuzz round 16, on the changes of round 15: safetensors' sorted-order fallback
sorted every weight before every bias and missed siblings that could swap; saves
to one path from several threads took each other's temporary files; a class index
or a --model-option key twice kept the last; file names' control characters
reached the terminal; a saved model's missing plugin went unnamed by summary; a
save over a symbolic link replaced the link; a callback a callback added was
called unchecked."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nnumba
from nnumba import io
from nnumba.cli import main
from nnumba.errors import DTypeError, DuplicateKeyError, FileFormatError, SpecError, WeightsError
from runtime_plugin import runtime_plugin

TRAIN = ["train", "--train-size", "100", "--test-size", "20", "--no-progress", "--epochs", "1"]


def _save_linears(tmp_path, entries, seed=0):
    """A safetensors file of Linear modules (name, in, out) in module order, and the
    state dict it holds."""
    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file
    rng, state = np.random.default_rng(seed), {}
    for name, i, o in entries:
        state[f"{name}.weight"] = rng.normal(size=(o, i))
        state[f"{name}.bias"] = rng.normal(size=(o,))
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    model = nnumba.Sequential.from_spec(
        [{"type": "Linear", "in_features": i, "out_features": o} for _, i, o in entries])
    return path, state, model.astype(np.float64)


@pytest.mark.parametrize("entries", [
    [(n, 4 + i, 5 + i) for i, n in enumerate("abcdefgh")],  # 8! orders, sorted = module order
    [(f"layers.{b}.{n}", 4 + j, 5 + j) for b in range(5)  # 6**5 orders, transformer-like
     for j, n in enumerate(["fc1", "fc2", "fc3"])]], ids=["eight-named", "blocks"])
def test_too_many_orders_to_try_still_loads_the_sorted_module_order(tmp_path, entries):
    from nnumba.torch_import import load_torch_weights
    path, state, model = _save_linears(tmp_path, entries)
    load_torch_weights(model, path)
    for layer, (name, _, _) in zip(model.layers, entries):
        np.testing.assert_array_equal(layer.weight.value, state[f"{name}.weight"])
        np.testing.assert_array_equal(layer.bias.value, state[f"{name}.bias"])


def test_siblings_that_share_a_shape_are_refused_when_their_orders_are_too_many(tmp_path):
    """'x' holds two 4x4 layers, 'y' one: x's second block could stand where y's is.
    With 8! orders not tried, any shape two siblings share makes the order unknown."""
    from nnumba.torch_import import load_torch_weights
    entries = [("x.0", 4, 4), ("x.1", 4, 4), ("y", 4, 4)] + \
        [(n, 5 + i, 6 + i) for i, n in enumerate("abcdef")]
    entries[3] = ("a", 4, 6)
    path, _, model = _save_linears(tmp_path, entries)
    before = model.flat_params.copy()
    with pytest.raises(WeightsError, match=r"modules 'x' and 'y' both hold tensors of shape"):
        load_torch_weights(model, path)
    np.testing.assert_array_equal(model.flat_params, before)


@pytest.mark.parametrize("text", ['{"0": "cat", "0": "dog"}', "{0: 'cat', 0: 'dog'}"])
def test_a_labels_file_naming_a_key_twice_is_refused(tmp_path, text):
    from nnumba.commands.classify import load_labels
    path = tmp_path / "labels.json"
    path.write_text(text)
    with pytest.raises(DuplicateKeyError, match="appears twice"):
        load_labels(path)
    path.write_text('{"0": "cat", "00": "dog"}')
    with pytest.raises(FileFormatError, match="names class 0 twice"):
        load_labels(path)
    path.write_text("{0: 'cat', 1: 'dog'}")
    assert load_labels(path) == {0: "cat", 1: "dog"}


def test_a_model_option_naming_a_key_twice_is_refused():
    from nnumba.commands import model_options
    with pytest.raises(ValueError, match="--model-option hidden: the key 'a' appears twice"):
        model_options.parse(['hidden={"a": 1, "a": 2}'])
    assert model_options.parse(["hidden=[8, 4]", "name=abc"]) == {"hidden": [8, 4],
                                                                  "name": "abc"}


def test_file_names_reach_the_terminal_with_their_control_characters_escaped(tmp_path, capsys):
    path = tmp_path / "w\x1b[31mred\x07.npz"
    assert main(TRAIN + ["--model", "logreg", "--save", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err and "\\x1b[31mred" in out
    spec = tmp_path / "s\x1b[7mX.json"
    spec.write_text(json.dumps([{"type": "Flatten"},
                                {"type": "Linear", "in_features": 784, "out_features": 10}]))
    assert main(["summary", str(spec)]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\n" in out.strip()  # its table keeps its lines


def test_stored_loss_options_in_an_error_are_shown_short(tmp_path, capsys):
    first = tmp_path / "first.npz"
    assert main(TRAIN + ["--model", "logreg", "--save", str(first)]) == 0
    capsys.readouterr()
    arrays = dict(np.load(first))
    meta = json.loads(str(arrays[io._SPEC_KEY]))
    meta["training"]["loss_options"] = {"reduction": "x" * 200_000}
    arrays[io._SPEC_KEY] = np.array(json.dumps(meta))
    np.savez(first, **arrays)
    assert main(TRAIN + ["--model", str(first)]) != 0
    err = capsys.readouterr().err
    assert "does not build that loss" in err and len(err) < 2_000


def test_summary_of_a_saved_model_names_its_missing_plugins_distribution(tmp_path):
    pytest.importorskip("nnumba_extra_activations")
    model = nnumba.Sequential.from_spec([
        {"type": "Flatten"}, {"type": "Linear", "in_features": 64, "out_features": 3},
        {"type": "LeakyReLU"}])
    path = tmp_path / "leaky.npz"
    io.save(model, path, classes=["a", "b", "c"], input_shape=(1, 8, 8))
    env = {**os.environ, "NNUMBA_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run = subprocess.run([sys.executable, "-m", "nnumba", "summary", str(path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "its layers came from nnumba-extra-activations" in run.stderr


def test_a_save_over_a_symbolic_link_writes_the_file_it_points_to(tmp_path):
    model = nnumba.Sequential.from_spec([{"type": "Linear", "in_features": 4,
                                          "out_features": 2}], seed=1)
    target = tmp_path / "runs" / "w.npz"
    io.save(model, target)
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    model.layers[0].weight.value[...] = 7.0
    assert io.save(model, link) == link
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert (io.load_model(target).layers[0].weight.value == 7.0).all()
    assert sorted(p.name for p in target.parent.iterdir()) == ["w.npz"]


def test_a_callback_that_a_callback_adds_is_checked_before_the_next_epoch():
    from nnumba.losses import CrossEntropy
    from nnumba.train import SGDTrainer
    data = nnumba.data.load_dataset("mnist-5k")
    trainer = SGDTrainer(nnumba.build("logreg", seed=0), CrossEntropy(), lr=0.1)
    trainer.callbacks = [lambda tr, row: tr.callbacks.append(42)]
    with pytest.raises(DTypeError, match="callbacks must be functions"):
        trainer.fit(data.x_train[:100], data.y_train[:100], epochs=3)
    assert trainer.updates == 1  # one epoch of one batch: refused before the second


# ---- the review of rounds 15 and 16 -------------------------------------------------

def test_classify_runs_a_float64_saved_model(tmp_path, capsys):
    """io.rebuild keeps the saved dtype: the image must come in it (float32 pixels were
    refused by a float64 model's first layer)."""
    pytest.importorskip("PIL")
    from PIL import Image
    model = nnumba.build("mlp", hidden=16, seed=0).astype(np.float64)
    path, image = tmp_path / "m64.npz", tmp_path / "digit.png"
    io.save(model, path, classes=[str(i) for i in range(10)], input_shape=(1, 28, 28))
    Image.fromarray((np.arange(784) % 256).astype(np.uint8).reshape(28, 28)).save(image)
    assert main(["classify", str(image), "--weights", str(path), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["top"]
    assert len(top) >= 1 and top[0]["label"] in [str(i) for i in range(10)]


def test_a_multi_line_error_keeps_its_lines(tmp_path, capsys):
    """The recipe for converting a .pt file is several lines to copy: escaping every
    control character made it one unusable line."""
    pytest.importorskip("PIL")
    from PIL import Image
    image, weights = tmp_path / "x.png", tmp_path / "model.pt"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    weights.write_bytes(b"\x80\x02not really")
    assert main(["classify", str(image), "--weights", str(weights)]) != 0
    err = capsys.readouterr().err
    assert "safetensors.torch.save_file(" in err and "\\n" not in err
    lines = err.rstrip("\n").split("\n")
    assert len(lines) > 2 and all(line.startswith("  ") for line in lines[1:])


def test_the_callbacks_list_a_user_holds_stays_the_trainers():
    from nnumba.losses import CrossEntropy
    from nnumba.train import SGDTrainer
    data = nnumba.data.load_dataset("mnist-5k")
    seen, mine = [], []
    trainer = SGDTrainer(nnumba.build("logreg", seed=0), CrossEntropy(), lr=0.1)
    trainer.callbacks = mine
    trainer.fit(data.x_train[:100], data.y_train[:100], epochs=1)
    mine.append(lambda tr, row: seen.append(row["epoch"]))
    trainer.fit(data.x_train[:100], data.y_train[:100], epochs=2)
    assert trainer.callbacks is mine and seen == [2, 3]


def test_symbolic_links_that_lead_nowhere_are_one_clear_error(tmp_path):
    from nnumba.errors import SaveError
    model = nnumba.Sequential.from_spec([{"type": "Linear", "in_features": 4,
                                          "out_features": 2}])
    (tmp_path / "a.npz").symlink_to(tmp_path / "b.npz")
    (tmp_path / "b.npz").symlink_to(tmp_path / "a.npz")
    with pytest.raises(SaveError, match="leads back to itself"):
        io.save(model, tmp_path / "a.npz")
    (tmp_path / "d.npz").symlink_to(tmp_path / "no-folder" / "w.npz")
    with pytest.raises(SaveError, match="whose folder does not exist"):
        io.save(model, tmp_path / "d.npz")


def test_a_huge_count_of_orders_is_said_short(tmp_path):
    """17 named modules out of sorted order: 17! orders, said as a bound, not digits."""
    from nnumba.torch_import import load_torch_weights
    names = [f"m{chr(ord('q') - i)}" for i in range(17)]  # mq, mp, ... : reverse order
    path, _, model = _save_linears(tmp_path, [(n, 3 + i, 4 + i) for i, n in enumerate(names)])
    with pytest.raises(WeightsError, match=r"more than 10\*\*12 orders.*export to .npz") as info:
        load_torch_weights(model, path)
    assert len(str(info.value)) < 1000


def test_a_resumed_run_keeps_the_options_of_its_loss_named_by_its_qualified_name(tmp_path,
                                                                                 capsys):
    from nnumba.losses import CrossEntropy
    from nnumba.train import SGDTrainer
    data = nnumba.data.load_dataset("mnist-5k")
    model = nnumba.build("mlp", hidden=16, seed=3)
    trainer = SGDTrainer(model, CrossEntropy(reduction="sum"), lr=0.01, batch_size=50)
    trainer.fit(data.x_train[:100], data.y_train[:100], epochs=1)
    first = tmp_path / "first.npz"
    io.save(model, first, classes=[str(i) for i in range(10)], input_shape=(1, 28, 28),
            training=trainer)
    assert main(TRAIN + ["--model", str(first), "--loss", "nnumba.losses:CrossEntropy"]) == 0
    assert "loss's options (reduction='sum')" in capsys.readouterr().out


def test_a_loss_whose_options_no_file_holds_is_refused_before_training(tmp_path, capsys):
    from nnumba.losses import CrossEntropy

    class ArrayOptions(CrossEntropy):
        def __init__(self, reduction="mean"):
            super().__init__(reduction)
            self.weights = np.ones(10)

        def config(self):
            return {"weights": self.weights, **super().config()}

    with runtime_plugin(losses={"ArrayOptions16": ArrayOptions}):
        assert main(TRAIN + ["--model", "logreg", "--loss", "ArrayOptions16", "--save",
                             str(tmp_path / "w.npz")]) != 0
        out = capsys.readouterr()
        assert "JSON" in out.err and "epoch 1" not in out.out
        assert not (tmp_path / "w.npz").exists()


def test_warm_start_with_bad_labels_gets_scikit_learns_own_error():
    pytest.importorskip("sklearn")
    from nnumba.sklearn import NNClassifier
    x = np.random.default_rng(0).standard_normal((30, 4)).astype(np.float32)
    ours = NNClassifier(model="logreg", epochs=1, warm_start=True).fit(x, np.arange(30) % 3)
    with pytest.raises(ValueError) as info:
        ours.fit(x, np.where(np.arange(30) == 4, np.nan, np.arange(30) % 3))
    assert "warm_start" not in str(info.value)


# ---- round 17 --------------------------------------------------------------------------

def test_a_link_to_a_folder_name_never_writes_the_file_of_that_name(tmp_path):
    """w.npz -> data.csv/ : the checks saw a link that did not exist (ENOTDIR), and
    resolve() dropped the slash, so the save replaced the user's CSV."""
    from nnumba.errors import SaveError
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    (tmp_path / "w.npz").symlink_to(f"{data}/")
    (tmp_path / "n.npz").symlink_to(f"{tmp_path / 'newdir'}/")
    model = nnumba.Sequential.from_spec([{"type": "Linear", "in_features": 4,
                                          "out_features": 2}])
    for link in ("w.npz", "n.npz"):
        with pytest.raises(SaveError, match="a folder's name"):
            io.save(model, tmp_path / link)
    assert data.read_text() == "a,b\n1,2\n" and not (tmp_path / "newdir").exists()
    (tmp_path / "plain.npz").symlink_to(data)  # the file itself: not weights, refused
    with pytest.raises(SaveError, match="not an nnumba weights file"):
        io.save(model, tmp_path / "plain.npz")
    (tmp_path / "gone").symlink_to(tmp_path / "no-such-folder")
    with pytest.raises(SaveError, match="gone is a symbolic link to a folder that does not"):
        io.save(model, tmp_path / "gone" / "w.npz")


def test_a_callable_callback_is_one_callback_even_where_it_is_iterable():
    from nnumba.losses import CrossEntropy
    from nnumba.train import SGDTrainer

    class Logger:  # callable, and a sequence of the rows it kept
        def __init__(self):
            self.rows = []

        def __call__(self, trainer, row):
            self.rows.append(row["epoch"])

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, i):
            return self.rows[i]

    data = nnumba.data.load_dataset("mnist-5k")
    logger = Logger()
    trainer = SGDTrainer(nnumba.build("logreg", seed=0), CrossEntropy(), callbacks=logger)
    trainer.fit(data.x_train[:100], data.y_train[:100], epochs=2)
    assert logger.rows == [1, 2]
    with pytest.raises(DTypeError, match="callbacks must be functions"):
        trainer.callbacks = {logger: 1}  # a dict's keys are no list of callbacks


def test_a_line_break_in_a_file_name_cannot_forge_an_error_line(tmp_path, capsys):
    image = tmp_path / "no\nnnumba classify: error: fake line.png"
    assert main(["classify", str(image), "--weights", str(tmp_path / "m.npz")]) != 0
    err = capsys.readouterr().err
    assert [line for line in err.split("\n") if line.startswith("nnumba")] == \
        [err.split("\n")[0]]


def test_the_model_kit_names_a_malformed_input_shape(monkeypatch):
    from nnumba import testing
    from nnumba.models import NamedModel

    def dense(inputs=4, classes=3):
        return [{"type": "Linear", "in_features": inputs, "out_features": classes}]

    for shape in ("4", (-4,), (4.5,)):  # a value: refused where the model is made
        with pytest.raises(SpecError, match="input_shape must be None or a tuple"):
            NamedModel(dense, input_shape=shape)
    cases = {"kit17-str": lambda **_: "4", "kit17-neg": lambda **_: (-4,),
             "kit17-float": lambda **_: (4.5,), "kit17-raises": lambda **_: 1 / 0,
             "kit17-huge": (10**6, 10**6)}

    models = {name: NamedModel(dense, input_shape=shape) for name, shape in cases.items()}
    with runtime_plugin(models=models):
        for model in cases:
            with pytest.raises(testing.ConformanceError,
                               match=f"model '{model}': (its )?input[_ ]shape"):
                testing.check_model(model)
        with pytest.raises(testing.ConformanceError) as info:
            testing.check_model("mlp", hidden=-1)
        assert str(info.value).count("model 'mlp'") == 1


def test_a_labels_text_file_has_one_name_a_line(tmp_path):
    from nnumba.commands.classify import load_labels
    path = tmp_path / "labels.txt"
    path.write_text("cat\u2028tabby\ndog\fhound\r\nbird\n", newline="")
    assert load_labels(path) == {0: "cat\u2028tabby", 1: "dog\fhound", 2: "bird"}


def test_a_pasted_huge_value_gives_an_error_line_of_a_readable_length(capsys):
    assert main(["summary", "mlp", "--model-option", "x" * 200_000 + "=1"]) != 0
    err = capsys.readouterr().err
    assert 1000 < len(err) < 5000 and "characters ..." in err
