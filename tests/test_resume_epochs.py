"""A resumed training numbers its epochs on from the saved run's (they restarted at 1,
so a callback scheduling by epoch, or the progress lines, began again): the count is
saved with the training, and a file saved before it was kept resumes from 0."""
import json

import numpy as np
import pytest

import nnumba
from nnumba.checkpoint import stored_training
from nnumba.cli import main
from nnumba.errors import SpecError
from nnumba.losses import CrossEntropy
from nnumba.train import SGDTrainer


def _data():
    rng = np.random.default_rng(0)
    return rng.random((40, 4), dtype=np.float32), rng.integers(0, 3, 40)


def _trainer(model):
    return SGDTrainer(model, CrossEntropy(), lr=0.1, batch_size=10, seed=0, precompile=False)


def _model():
    return nnumba.build([{"type": "Linear", "in_features": 4, "out_features": 3}], seed=0)


def test_a_resumed_run_numbers_its_epochs_on(tmp_path):
    x, y = _data()
    model, seen = _model(), []
    first = _trainer(model)
    first.fit(x, y, epochs=2)
    path = nnumba.save(model, tmp_path / "m.npz", training=first)
    stored = stored_training(path)
    assert stored["epochs"] == 2
    again = nnumba.load_model(path)
    second = _trainer(again)
    second.callbacks.append(lambda trainer, row: seen.append(row["epoch"]))
    second.resume(stored)
    history = second.fit(x, y, epochs=3)
    assert [row["epoch"] for row in history.epochs] == [3, 4, 5] == seen
    assert second.state()[0]["epochs"] == 5  # and a later save keeps counting
    # the weights are those of one run of 5 epochs
    whole = _model()
    _trainer(whole).fit(x, y, epochs=5)
    np.testing.assert_allclose(again.flat_params, whole.flat_params, rtol=1e-6, atol=1e-7)


def test_a_record_without_a_count_resumes_from_zero_and_a_bad_count_is_refused(tmp_path):
    x, y = _data()
    model = _model()
    trainer = _trainer(model)
    trainer.fit(x, y, epochs=1)
    stored = stored_training(nnumba.save(model, tmp_path / "m.npz", training=trainer))
    old = {k: v for k, v in stored.items() if k != "epochs"}  # as files before it kept one
    fresh = _trainer(_model())
    fresh.resume(old)
    assert fresh.fit(x, y, epochs=1).epochs[0]["epoch"] == 1
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(SpecError, match="stored epochs"):
            _trainer(_model()).resume({**stored, "epochs": bad})


def test_the_cli_counts_on_from_the_saved_run(tmp_path, capsys):
    saved = tmp_path / "m.npz"
    args = ["train", "--model", "mlp", "--train-size", "200", "--test-size", "50",
            "--batch-size", "50", "--epochs", "2", "--save", str(saved)]
    assert main(args) == 0
    capsys.readouterr()
    more = ["train", "--model", str(saved), "--train-size", "200", "--test-size", "50",
            "--batch-size", "50", "--epochs", "1", "--json"]
    assert main(more) == 0
    out, err = capsys.readouterr()
    assert "epoch 3/3" in err + out
    assert [row["epoch"] for row in json.loads(out)["history"]] == [3]
