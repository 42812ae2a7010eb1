"""Fuzz round 5 (the command line, files and plugins from the outside): each test
fails on the code before its fix."""
import json

import numpy as np
import pytest

import nnumba
from nnumba.cli import main
from nnumba.errors import SaveError


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _data(path, n=30):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.random((n, 4)).astype("f4"), y_train=np.arange(n) % 2)
    return path


def test_save_never_replaces_a_file_that_is_not_nnumba_weights(tmp_path, capsys):
    data = _data(tmp_path / "mydata.npz")
    before = data.read_bytes()
    for name in ("mydata", "mydata.npz"):  # --save naming the --data file lost the data set
        code, _, err = _run(capsys, "train", "--data", data, "--epochs", 1, "--save",
                            tmp_path / name)
        assert code == 2 and "is not an nnumba weights file; refusing to replace it" in err
        assert data.read_bytes() == before
    with pytest.raises(SaveError, match="not an nnumba weights file"):
        nnumba.save(nnumba.build("logreg", inputs=4, classes=2), data)
    # weights saved before are replaced, as a user re-running a script expects
    weights = tmp_path / "w.npz"
    nnumba.save(nnumba.build("logreg", inputs=4, classes=2), weights)
    code, _, _ = _run(capsys, "train", "--data", data, "--epochs", 1, "--model", "logreg",
                      "--save", weights)
    assert code == 0 and nnumba.load_model(weights).num_params() == 4 * 2 + 2
