"""Review round 21 (of the fuzz 19-20 and plugin trial 16-17 fixes): an over-long --save
name in a folder not made yet is refused before training, pandas' header is a header
whatever the classes, and a registered name of the longest allowed length is still
suggested.  References: the OS's NAME_MAX, the csv module / np.loadtxt, difflib."""
from __future__ import annotations

import csv
import difflib
import os

import numpy as np
import pytest

import nnumba
from nnumba.errors import SaveError


# ---- 1. check_save_path(create=False) lets an over-long file name in a missing folder through

def test_save_check_without_create_refuses_an_over_long_name_in_a_missing_folder(tmp_path):
    """`nnumba train --save new/<300 chars>.npz` trained, then failed at the save ("File
    name too long") and left new/ behind: create=False returns before the temporary-file
    test whenever the folder is missing. Reference: the file system's own NAME_MAX
    (os.pathconf), and create=True, which refuses the same path."""
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    path = tmp_path / "new" / ("a" * (name_max + 10) + ".npz")
    from nnumba.io import check_save_path
    with pytest.raises(SaveError):  # the reference: the check that makes the folder
        check_save_path(tmp_path / "other" / path.name)
    with pytest.raises(SaveError, match="too long|cannot save"):
        check_save_path(path, create=False)
    assert not (tmp_path / "new").exists()  # and still no folders for a refused run


def test_train_refuses_an_over_long_save_name_before_training(tmp_path, capsys):
    """The command line: nothing may be trained for a --save that cannot be written."""
    from nnumba.cli import main
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    save = tmp_path / "new" / ("a" * (name_max + 10) + ".npz")
    rc = main(["train", "--epochs", "1", "--train-size", "100", "--test-size", "50",
               "--save", str(save)])
    out = capsys.readouterr().out
    assert rc != 0
    assert "epoch 1/1" not in out, "trained for minutes, then refused the save"
    assert not (tmp_path / "new").exists()


# ---- 2. pandas' 0,1,...,w-1 header is read as a sample where its label field is a class

def _pandas_csv(path, table):
    """What pandas.DataFrame(table).to_csv(path, index=False) writes (pandas is absent here)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(range(table.shape[1]))
        w.writerows([[repr(float(v)) for v in row] for row in table])


@pytest.mark.parametrize("label_first", [True, False])
def test_a_pandas_header_is_a_header_whatever_the_classes(tmp_path, label_first):
    """README: "under an optional header line (pandas' 0,1,2,... for unnamed columns counts
    as one)". With the label first (--label-column 0, class 0 present), or last with as
    many classes as features (label 4 under the header's "4"), the header row is kept as
    a sample of an existing class: 41 samples, one with features 1,2,3,4 (or 0,1,2,3).
    Reference: the csv module's row count and np.loadtxt(skiprows=1)."""
    from nnumba.data import load_arrays
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4))
    y = np.repeat([0, 1, 2, 3, 4], 8)
    table = np.column_stack([y, x]) if label_first else np.column_stack([x, y])
    path = tmp_path / "table.csv"
    _pandas_csv(path, table)
    with open(path, newline="") as f:
        rows = sum(1 for _ in csv.reader(f)) - 1  # the header line
    want = np.loadtxt(path, delimiter=",", skiprows=1)
    assert rows == len(want) == 40
    data = load_arrays(path, label_column=0 if label_first else None, test_fraction=0.25)
    got = np.concatenate([data.x_train, data.x_test])
    assert len(got) == rows
    features = want[:, 1:] if label_first else want[:, :-1]
    # every sample read is a row of the file's data, none is the header
    assert all(np.isclose(features, g).all(axis=1).any() for g in got)


# ---- 3. two limits for one concept: names of 81-100 characters get no "did you mean"

def test_a_long_registered_name_is_still_suggested(monkeypatch):
    """Registry names may be 100 characters long (MAX_NAME), but unknown_name_message stops
    suggesting above LONGEST_NAME = 80 ("no registered name is that long"). Reference:
    difflib.get_close_matches, which the message uses for shorter names."""
    from nnumba.hookspecs import hookimpl
    from nnumba.layers import ReLU
    long_name = "Relu" + "x" * 86  # 90 characters, valid
    assert len(long_name) <= 100

    class Plugin:
        @hookimpl
        def nnumba_register_layers(self):
            return {long_name: type("LongReLU", (ReLU,), {})}

    name = nnumba.register_plugin(Plugin(), "review21-long-name")
    try:
        typo = long_name[:-1] + "y"
        assert difflib.get_close_matches(typo, [long_name], cutoff=0.6) == [long_name]
        with pytest.raises(nnumba.RegistryError) as info:
            nnumba.get_layer(typo)
        assert "did you mean" in str(info.value) and long_name in str(info.value)
    finally:
        nnumba.unregister_plugin(name)
