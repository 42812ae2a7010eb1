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
from nnumba.errors import DTypeError, DuplicateKeyError, FileFormatError, WeightsError

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
