"""Plugin trial 13 (a layer, a loss with an option and a named model, written from
the docs alone): resuming a saved run from the command line rebuilt its loss with
the defaults (FocalLoss's gamma, Hinge's lam, a "sum" reduction), and the
validation helper called a plugin's own upper bound a memory limit."""
import json

import numpy as np
import pytest

import nnumba
from nnumba import io
from nnumba.checkpoint import stored_training
from nnumba.cli import main
from nnumba.errors import SaveError, SpecError, TooLargeError, WeightsError
from nnumba.layers.validation import integer
from nnumba.losses import CrossEntropy
from nnumba.npz import npz_headers
from nnumba.train import SGDTrainer
from runtime_plugin import runtime_plugin

ARGS = ["train", "--train-size", "300", "--test-size", "50", "--no-progress"]


def _first_run(path, loss):
    """One epoch on 300 digits with ``loss``, saved with its training."""
    data = nnumba.data.load_dataset("mnist-5k")
    model = nnumba.build("mlp", seed=3)
    trainer = SGDTrainer(model, loss, lr=0.05, momentum=0.9, batch_size=100, seed=3)
    trainer.fit(data.x_train[:300], data.y_train[:300], epochs=1)
    io.save(model, path, classes=[str(i) for i in range(10)], input_shape=(1, 28, 28),
            training=trainer)
    return data


def _library_epoch(path, data, loss):
    model = io.load_model(path)
    trainer = SGDTrainer(model, loss, lr=0.05, momentum=0.9, batch_size=100, seed=0)
    trainer.resume(stored_training(path))
    trainer.fit(data.x_train[:300], data.y_train[:300], epochs=1)
    return model.flat_params


def test_a_resumed_run_trains_with_the_saved_losss_options(tmp_path, capsys):
    first, again = tmp_path / "first.npz", tmp_path / "again.npz"
    data = _first_run(first, CrossEntropy(reduction="sum"))
    assert stored_training(first)["loss_options"] == {"reduction": "sum"}
    assert main(ARGS + ["--model", str(first), "--epochs", "1", "--save", str(again)]) == 0
    out = capsys.readouterr().out
    assert "loss's options (reduction='sum')" in out
    resumed = io.load_model(again).flat_params
    np.testing.assert_allclose(resumed, _library_epoch(first, data, CrossEntropy("sum")),
                               rtol=0, atol=1e-6)
    # the defaults would have trained another model: the check can tell them apart
    with pytest.warns(RuntimeWarning, match="loss_options"):  # another loss: said
        other = _library_epoch(first, data, CrossEntropy())
    assert np.abs(resumed - other).max() > 1e-3
    # the resumed run keeps them for the next one too
    assert stored_training(again)["loss_options"] == {"reduction": "sum"}


def test_another_loss_named_on_the_command_line_takes_its_own_defaults(tmp_path, capsys):
    first = tmp_path / "first.npz"
    _first_run(first, CrossEntropy(reduction="sum"))
    assert main(ARGS + ["--model", str(first), "--epochs", "1", "--loss", "MSE"]) == 0
    assert "loss's options" not in capsys.readouterr().out


def test_stored_options_that_no_longer_build_the_loss_are_one_clear_line(tmp_path, capsys):
    first = tmp_path / "first.npz"
    _first_run(first, CrossEntropy())
    arrays = dict(np.load(first))
    meta = json.loads(str(arrays[io._SPEC_KEY]))
    meta["training"]["loss_options"] = {"reduction": "sum", "gamma": 2.0}  # another version's
    arrays[io._SPEC_KEY] = np.array(json.dumps(meta))
    np.savez(first, **arrays)
    assert main(ARGS + ["--model", str(first), "--epochs", "1"]) != 0
    err = capsys.readouterr().err
    assert "trained with CrossEntropy {'gamma': 2.0, 'reduction': 'sum'}" in err
    assert "Traceback" not in err
    meta["training"]["loss_options"] = ["sum"]
    arrays[io._SPEC_KEY] = np.array(json.dumps(meta))
    np.savez(first, **arrays)
    with pytest.raises(WeightsError, match="loss_options is"):
        stored_training(first)


def test_a_file_saved_before_loss_options_resumes_with_the_defaults(tmp_path):
    first = tmp_path / "first.npz"
    _first_run(first, CrossEntropy())
    arrays = dict(np.load(first))
    meta = json.loads(str(arrays[io._SPEC_KEY]))
    del meta["training"]["loss_options"]
    arrays[io._SPEC_KEY] = np.array(json.dumps(meta))
    np.savez(first, **arrays)
    assert set(npz_headers(first)) == set(arrays)
    assert stored_training(first)["loss_options"] == {}
    assert main(ARGS + ["--model", str(first), "--epochs", "1"]) == 0


def test_a_loss_whose_options_json_cannot_hold_is_refused_before_writing(tmp_path):
    class OddTrial13(CrossEntropy):
        def config(self):
            return {"weights": object()}

    with runtime_plugin(losses={"OddTrial13": OddTrial13}):
        path = tmp_path / "odd.npz"
        with pytest.raises(SaveError, match=r"OddTrial13.config\(\) gave .*JSON"):
            _first_run(path, OddTrial13())
        assert not path.exists()


def test_a_plugins_own_upper_bound_is_a_range_not_a_memory_limit():
    with pytest.raises(SpecError, match=r"kernel must be an integer in \[1, 28\], got 30"):
        integer("affine-cnn", "kernel", 30, 1, 28)
    with pytest.raises(SpecError, match=r"in \[1, 28\], got 0"):
        integer("affine-cnn", "kernel", 0, 1, 28)
    with pytest.raises(TooLargeError, match="more than any array can hold"):
        integer("Linear", "in_features", 2**63)
    assert integer("affine-cnn", "kernel", 28, 1, 28) == 28


def test_classify_names_the_distribution_a_missing_plugin_layer_came_from(tmp_path):
    """`nnumba classify` of a file whose plugin is not loaded says what to install, as
    load_model did (it read the file's spec another way)."""
    pytest.importorskip("nnumba_extra_activations")
    pytest.importorskip("PIL")
    import os
    import subprocess
    import sys

    from PIL import Image
    model = nnumba.Sequential.from_spec([{"type": "Flatten"},
                                         {"type": "Linear", "in_features": 64, "out_features": 3},
                                         {"type": "LeakyReLU"}])
    path, image = tmp_path / "leaky.npz", tmp_path / "digit.png"
    io.save(model, path, classes=["a", "b", "c"], input_shape=(1, 8, 8))
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).save(image)
    env = {**os.environ, "NNUMBA_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run = subprocess.run([sys.executable, "-m", "nnumba", "classify", str(image), "--weights",
                          str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "its layers came from nnumba-extra-activations" in run.stderr
    assert "(LeakyReLU)" in run.stderr
