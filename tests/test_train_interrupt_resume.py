"""Ctrl-C during `nnumba train` loses nothing trained where --save asks for the
weights: they are saved as they were after the last complete update, with the run's
class names and input shape, and the command ends with 130 and one line.  `--model
FILE.npz` trains on from saved weights."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nnumba
from nnumba import io
from nnumba.checkpoint import stored_training
from nnumba.cli import main
from nnumba.losses import CrossEntropy
from nnumba.train import SGDTrainer
from nnumba.train.base import Trainer

# 300 samples in batches of 100: 3 updates an epoch
ARGS = ["train", "--train-size", "300", "--test-size", "50", "--batch-size", "100",
        "--seed", "3", "--no-progress"]


def _interrupt_at_update(monkeypatch, k):
    """Ctrl-C arrives as update ``k`` (1-based) is about to be applied."""
    step = Trainer._step

    def interrupted_step(self):
        if self.updates + 1 == k:
            raise KeyboardInterrupt
        step(self)
    monkeypatch.setattr(Trainer, "_step", interrupted_step)


def test_weights_of_the_last_complete_update_are_saved(tmp_path, monkeypatch, capsys):
    reference = tmp_path / "one-epoch.npz"
    assert main(ARGS + ["--epochs", "1", "--save", str(reference)]) == 0
    capsys.readouterr()
    _interrupt_at_update(monkeypatch, 4)  # the first update of epoch 2
    saved = tmp_path / "interrupted.npz"
    assert main(ARGS + ["--epochs", "5", "--save", str(saved)]) == 130
    out, err = capsys.readouterr()
    assert f"interrupted in epoch 2/5, after 3 updates: weights saved to {saved} " \
           f"(--model {saved} trains on from them, from the start of an epoch)" in err
    assert "epoch 1/5" in out and "epoch 2/5" not in out
    # the same seed trains the same first epoch: three updates, nothing of the fourth
    np.testing.assert_array_equal(io.load_model(saved).flat_params,
                                  io.load_model(reference).flat_params)
    assert io.stored_info(saved) == io.stored_info(reference)
    assert io.stored_info(saved)["input_shape"] == (1, 28, 28)


def test_without_save_the_line_says_how_to_keep_them(tmp_path, monkeypatch, capsys):
    _interrupt_at_update(monkeypatch, 2)
    assert main(ARGS + ["--epochs", "2"]) == 130
    err = capsys.readouterr().err
    assert "interrupted in epoch 1/2, after 1 update (--save FILE keeps the weights" in err


def test_before_the_first_update_nothing_is_written(tmp_path, monkeypatch, capsys):
    _interrupt_at_update(monkeypatch, 1)
    saved = tmp_path / "m.npz"
    assert main(ARGS + ["--epochs", "2", "--save", str(saved)]) == 130
    assert "after 0 updates: nothing trained, nothing saved" in capsys.readouterr().err
    assert not saved.exists()


def test_the_trainer_counts_its_updates_and_keeps_the_epochs_done():
    rng = np.random.default_rng(0)
    x, y = rng.random((50, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 50)

    def stop(trainer, row):
        raise KeyboardInterrupt

    trainer = SGDTrainer(nnumba.build("mlp", seed=0), CrossEntropy(), batch_size=20, seed=0,
                         callbacks=[stop])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(x, y, epochs=3)
    assert trainer.updates == 3 and len(trainer.history.epochs) == 1
    trainer.callbacks = []
    trainer.fit(x, y, epochs=1)
    assert trainer.updates == 6 and len(trainer.history.epochs) == 2


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_a_real_ctrl_c_saves_the_weights(tmp_path):
    saved = tmp_path / "m.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnumba", "train", "--epochs", "1000", "--save", str(saved),
         "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NNUMBA_PRECOMPILE": "0"})
    try:
        for line in proc.stdout:  # the first epoch's line: training is under way
            if line.startswith("epoch 1/1000"):
                break
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "weights saved to" in err and "Traceback" not in err
    assert io.load_model(saved).num_params() == nnumba.build("mlp").num_params()


def test_a_saved_model_trains_on_from_its_weights(tmp_path, capsys):
    first, again = tmp_path / "first.npz", tmp_path / "again.npz"
    assert main(ARGS + ["--epochs", "1", "--save", str(first)]) == 0
    # at lr 0 nothing moves: the weights are the saved ones, not a new initialisation
    assert main(ARGS + ["--model", str(first), "--lr", "0", "--epochs", "1",
                        "--save", str(again)]) == 0
    assert "(its weights, trained on)" in capsys.readouterr().out
    np.testing.assert_array_equal(io.load_model(again).flat_params,
                                  io.load_model(first).flat_params)
    # and an epoch more is the same epoch the library trains from the loaded model, with
    # the saved momentum buffer (--seed: the batch order that seed draws)
    assert main(ARGS + ["--model", str(first), "--epochs", "1", "--lr", "0.05",
                        "--save", str(again)]) == 0
    model = io.load_model(first)
    data = nnumba.data.load_dataset("mnist-5k")
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.05, momentum=0.9, batch_size=100, seed=3)
    with pytest.warns(RuntimeWarning, match='lr 0.1 -> 0.05'):  # settings changed: said
        trainer.resume(stored_training(first), rng=False)
    trainer.fit(data.x_train[:300], data.y_train[:300], epochs=1)
    np.testing.assert_allclose(io.load_model(again).flat_params, model.flat_params,
                               rtol=0, atol=1e-6)


def test_a_saved_model_takes_its_stored_input_shape_and_must_fit_the_classes(tmp_path,
                                                                             capsys):
    data = nnumba.data.load_dataset("mnist-5k")
    flat = tmp_path / "flat.npz"  # rows of 784 pixels: lenet reshapes them to (1, 28, 28)
    np.savez(flat, x_train=data.x_train[:200].reshape(200, -1), y_train=data.y_train[:200])
    lenet = tmp_path / "lenet.npz"
    common = ["train", "--data", str(flat), "--epochs", "1", "--no-progress"]
    assert main(common + ["--model", "lenet", "--save", str(lenet)]) == 0
    assert io.stored_info(lenet)["input_shape"] == (1, 28, 28)
    assert main(common + ["--model", str(lenet)]) == 0
    three = tmp_path / "three.npz"
    keep = data.y_train < 3
    np.savez(three, x_train=data.x_train[keep][:90], y_train=data.y_train[keep][:90])
    capsys.readouterr()
    assert main(["train", "--data", str(three), "--model", str(lenet), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nnumba train: error: saved model {lenet}: ") and "(3,)" in err
    assert main(["train", "--model", str(lenet), "--model-option", "classes=3"]) == 2
    assert "--model-option applies to named models" in capsys.readouterr().err


def _three_blobs(path, labels):
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = (np.eye(3)[y] * 4 + rng.normal(0, 0.5, (90, 3))).astype(np.float32)
    np.savez(path, x_train=x, y_train=np.asarray(labels)[y])
    return x, y


def test_training_on_keeps_the_saved_models_class_order(tmp_path, capsys):
    # the saved outputs score "2", "1", "0": the data's label 0 must train output 2
    x, y = _three_blobs(tmp_path / "d.npz", [0, 1, 2])
    saved = io.save(nnumba.Sequential(nnumba.get_layer("Linear")(3, 3), seed=0),
                    tmp_path / "m.npz", classes=["2", "1", "0"], input_shape=(3,))
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--model", str(saved), "--epochs",
                 "20", "--no-progress", "--save", str(saved)]) == 0
    assert "note:" not in capsys.readouterr().out
    assert io.stored_info(saved)["classes"] == ["2", "1", "0"]
    names = np.array(["2", "1", "0"])[io.load_model(saved).predict(x).argmax(1)]
    assert (names == y.astype(str)).mean() > 0.9  # by name: 1/3 if output i learnt label i


def test_other_class_names_are_a_note_and_are_saved(tmp_path, capsys):
    _three_blobs(tmp_path / "d.npz", ["bee", "cat", "dog"])
    saved = io.save(nnumba.Sequential(nnumba.get_layer("Linear")(3, 3), seed=0),
                    tmp_path / "m.npz", classes=["ant", "bee", "cat"], input_shape=(3,))
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--model", str(saved), "--epochs",
                 "1", "--no-progress", "--save", str(saved)]) == 0
    assert "outputs scored ant, bee, cat; they learn" in capsys.readouterr().out
    assert io.stored_info(saved)["classes"] == ["bee", "cat", "dog"]


def _save_interrupted_once(monkeypatch):
    """io.save meets a Ctrl-C as it starts (the user presses it again, or just then)."""
    real = io.save

    def save(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)
    monkeypatch.setattr(io, "save", save)


def test_a_ctrl_c_during_the_final_save_waits_for_it(tmp_path, monkeypatch, capsys):
    _save_interrupted_once(monkeypatch)  # it cut the save short: the whole run was lost
    saved = tmp_path / "m.npz"
    assert main(ARGS + ["--epochs", "1", "--save", str(saved)]) == 130
    out, err = capsys.readouterr()
    assert f"weights saved to {saved}" in out and err.strip().endswith("interrupted")
    assert io.load_model(saved).num_params() == nnumba.build("mlp").num_params()


def test_a_second_ctrl_c_waits_for_the_save_of_the_first(tmp_path, monkeypatch, capsys):
    _interrupt_at_update(monkeypatch, 4)
    _save_interrupted_once(monkeypatch)
    saved = tmp_path / "m.npz"
    assert main(ARGS + ["--epochs", "5", "--save", str(saved)]) == 130
    assert "after 3 updates: weights saved to" in capsys.readouterr().err
    assert saved.exists()


def test_ctrl_c_keeps_the_perceptrons_weights_so_far(tmp_path, monkeypatch, capsys):
    import nnumba.commands.train as command
    reference, saved = tmp_path / "two.npz", tmp_path / "m.npz"
    perceptron = ["train", "--trainer", "perceptron", "--train-size", "800"]
    assert main(perceptron + ["--epochs", "2", "--save", str(reference)]) == 0
    line = command.perceptron_line

    def stop_after_two(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt
        return line(row)
    monkeypatch.setattr(command, "perceptron_line", stop_after_two)
    capsys.readouterr()
    assert main(perceptron + ["--epochs", "50", "--save", str(saved)]) == 130
    assert "interrupted in epoch 3/50" in capsys.readouterr().err  # was: nothing saved
    np.testing.assert_array_equal(io.load_model(saved).flat_params,
                                  io.load_model(reference).flat_params)
