"""Fuzz round 13, ``nnumba train`` and the perceptron: the perceptron's history stays
bounded however many epochs run; the MLP's activation option must name an
activation layer."""
import json
import tracemalloc

import numpy as np
import pytest

from nnumba import train_perceptron
from nnumba.cli import main
from nnumba.errors import SpecError
from nnumba.models.mlp import mlp
from nnumba.train import perceptron as perceptron_module

SMALL = ["--train-size", "100", "--test-size", "50"]


def _not_separable(n=60):
    rng = np.random.default_rng(0)
    return rng.random((n, 4)), np.where(rng.integers(0, 2, n) > 0, 1, -1)


def _error_line(capsys, *argv):
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ---- 1. the perceptron's history: bounded memory ------------------------------------------
def test_a_long_perceptron_run_keeps_a_bounded_thinned_history():
    x, y = _not_separable()
    result = train_perceptron(x, y, max_epochs=25_000)
    assert not result.converged and result.epochs == 25_000
    history = result.history
    assert len(history) <= perceptron_module.HISTORY_ROWS
    epochs = [row["epoch"] for row in history]
    assert epochs[0] == 0 and epochs[-1] == 24_999  # the first and the last epoch kept
    assert epochs == sorted(set(epochs))
    assert len(set(np.diff(epochs[:-1]))) == 1  # evenly thinned
    json.dumps(history)  # still a list of rows
    assert "epoch 24999 nb_changes" in result.table()


def test_a_short_run_keeps_every_epoch_as_before():
    x, y = _not_separable()
    rows = []
    result = train_perceptron(x, y, max_epochs=50, callback=rows.append)
    assert result.history == rows and len(result.history) == result.epochs == 50
    assert [row["epoch"] for row in result.history] == list(range(50))


def test_the_perceptron_memory_does_not_grow_with_the_epochs():
    x, y = _not_separable()
    tracemalloc.start()
    try:
        train_perceptron(x, y, max_epochs=100_000)  # ~40 MB of rows kept before
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20, peak


def test_the_cli_reports_every_epoch_run_with_a_bounded_history(tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.setattr(perceptron_module, "HISTORY_ROWS", 16)
    x, y = _not_separable(40)
    data = tmp_path / "xor.npz"
    np.savez(data, x_train=x.astype(np.float32), y_train=(y > 0).astype(np.int64),
             x_test=x[:10].astype(np.float32), y_test=(y[:10] > 0).astype(np.int64))
    assert main(["train", "--trainer", "perceptron", "--data", str(data), "--epochs", "100",
                 "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["epochs"] == 100 and not result["converged"]
    assert len(result["history"]) <= 16 and result["history"][-1]["epoch"] == 99
    assert "epoch 57 nb_changes" in captured.err  # every epoch still said as it runs


# ---- 2. the MLP's activation --------------------------------------------------------------
@pytest.mark.parametrize("layer", ["Flatten", "Dropout", "Linear"])
def test_the_mlp_activation_must_be_an_activation_layer(capsys, layer):
    line = _error_line(capsys, *SMALL, "--epochs", "1", "--model-option",
                       f"activation={layer}")
    assert "mlp: activation must name an activation layer (" in line, line
    assert "ReLU" in line and "Tanh" in line and "Sigmoid" in line, line
    assert line.endswith(f"got '{layer}', which is not one"), line


@pytest.mark.parametrize("layer", ["ReLU", "Tanh", "Sigmoid", "Identity"])
def test_the_activation_layers_are_accepted(layer):
    assert mlp(4, 3, 2, activation=layer)[2] == {"type": layer}


def test_a_plugin_activation_is_accepted():
    pytest.importorskip("nnumba_extra_activations")
    assert mlp(4, 3, 2, activation="LeakyReLU")[2] == {"type": "LeakyReLU"}
    with pytest.raises(SpecError, match="LeakyReLU"):  # listed among those accepted
        mlp(4, 3, 2, activation="Flatten")
