"""Fuzz round 20 (b): pandas' numeric header row of a CSV, `nnumba plugins` with a
plugin's odd text, registry names that are not printable, and `nnumba summary` naming a
named model's bad option."""
import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnumba import hookimpl
from nnumba.cli import main
from nnumba.data import load_arrays
from nnumba.errors import RegistryError
from nnumba.layers import ReLU
from nnumba.registry import Registry

ENV = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
       "PYTHONIOENCODING": "utf-8"}


# ---- pandas' header 0,1,2,... --------------------------------------------------------

def _csv(path, first, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(first)
        w.writerows(rows)
    return path


def test_a_header_of_column_numbers_is_not_a_sample_of_a_new_class(tmp_path):
    """pd.DataFrame(np.column_stack([x, y])).to_csv(path, index=False) writes the header
    0,1,2,3: it is a header, not a 61st sample of a 4th class "3" that no other row
    has (the csv module's count of rows and labels below it is the reference)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((60, 3)), np.arange(60) % 3
    rows = [[*(repr(float(v)) for v in row), float(label)] for row, label in zip(x, y)]
    data = load_arrays(_csv(tmp_path / "frame.csv", range(4), rows))
    assert len(data.x_train) + len(data.x_test) == 60
    assert data.classes == ["0", "1", "2"]
    assert np.allclose(np.sort(np.concatenate([data.x_train, data.x_test]), axis=0),
                       np.sort(x.astype(np.float32), axis=0))


def test_column_numbers_above_text_labels_or_another_label_column_are_a_header(tmp_path):
    """The same header over class names, and with the label column given by index: the
    first row's label ("3", "0") is no class of the rows below, so it is a header."""
    rows = [[i * 0.1, i * 0.2, i * 0.3, "cat" if i % 2 else "dog"] for i in range(20)]
    data = load_arrays(_csv(tmp_path / "names.csv", range(4), rows))
    assert data.classes == ["cat", "dog"] and len(data.x_train) + len(data.x_test) == 20
    rows = [[1 + i % 2, i * 0.1, i * 0.2] for i in range(20)]  # labels 1, 2 in column 0
    data = load_arrays(_csv(tmp_path / "first.csv", range(3), rows), label_column=0)
    assert len(data.x_train) + len(data.x_test) == 20 and data.classes == ["0", "1", "2"]


@pytest.mark.parametrize("first", [["0", "1", "2"], ["1", "2", "3"], ["0", "1", "2.0"],
                                   ["0.0", "1.0", "2.0"]])
def test_a_first_row_of_small_integers_that_can_be_a_sample_stays_one(tmp_path, first):
    """A real first sample of small integers is kept: 0,1,2 where class 2 recurs below
    (pandas' header cannot be told from it), 1,2,3 (no writer's default header), and
    numbers written with decimals (pandas writes its column numbers as integers)."""
    rows = [[i % 4, i % 5, i % 4] for i in range(20)]  # classes 0..3
    data = load_arrays(_csv(tmp_path / "ints.csv", first, rows))
    assert len(data.x_train) + len(data.x_test) == 21


# ---- nnumba plugins ------------------------------------------------------------------

def _plugin_site(tmp_path, doc):
    site = tmp_path / "site"
    (site / "fz20-0.1.dist-info").mkdir(parents=True)
    (site / "fz20-0.1.dist-info" / "entry_points.txt").write_text("[nnumba]\nfz = fz20\n")
    (site / "fz20-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fz20\nVersion: 0.1\n")
    (site / "fz20").mkdir()
    (site / "fz20" / "__init__.py").write_text(textwrap.dedent(f"""
        from nnumba import hookimpl
        from nnumba.layers import ReLU
        class Odd(ReLU):
            pass
        Odd.__doc__ = {doc!r}
        @hookimpl
        def nnumba_register_layers():
            return {{"Odd": Odd}}
        """))
    return site


@pytest.mark.parametrize("doc", ["bad \ud800 char.", "one \x1b[2J\x1b[31mtwo\x07."])
def test_plugins_listing_survives_a_plugins_odd_docstring(tmp_path, doc):
    """A lone surrogate in one plugin's docstring must not end `nnumba plugins` half way
    ("'utf-8' codec can't encode ..."), and escape sequences must not reach the
    terminal: the listing shows every kind, as the --json listing of the same plugins
    does, with the odd characters written as escapes."""
    site = _plugin_site(tmp_path, doc)
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(site), os.getcwd()])}
    cmd = [sys.executable, "-m", "nnumba", "plugins"]
    ref = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True,
                         timeout=120)
    listed = json.loads(ref.stdout)
    assert any(e["name"] == "Odd" for e in listed["layer"]) and listed["loss"]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert "losses:" in out and "models:" in out, out[-500:]
    assert b"\x1b" not in proc.stdout and b"\x07" not in proc.stdout
    assert "\\ud800" in out or "\\x1b[2J" in out


@pytest.mark.parametrize("name", ["a\nb", "x" * 5000, "bad\ud800", "\x1b[2J"])
def test_a_registry_name_must_be_short_printable_text(name):
    """A name with a line break would split `nnumba plugins`' row, a lone surrogate end
    the listing, and a name of 5,000 characters pad every row: the registry refuses them
    as it refuses "" and "a:b", and keeps the plugin's good names out with them."""
    class Plugin:
        @hookimpl
        def nnumba_register_layers(self):
            return {name: ReLU, "Fine": ReLU}

    registry = Registry(autoload=False)
    with pytest.raises(RegistryError, match="a name must be a non-empty string without "
                                            "':', of printable characters"):
        registry.register(Plugin(), "odd")


# ---- nnumba summary ------------------------------------------------------------------

@pytest.mark.parametrize("value", ["[1,2]", '"abc"', "{}"])
def test_summary_names_the_option_not_int(capsys, value):
    """`nnumba summary mlp --model-option inputs=[1,2]` names the bad option as `nnumba
    train` does ("in_features must be an integer >= 1, got [1, 2] (list)"), not in
    int()'s words ("int() argument must be a string, ...")."""
    assert main(["summary", "mlp", "--model-option", f"inputs={value}"]) != 0
    err = capsys.readouterr().err
    assert "int() argument" not in err and "invalid literal for int()" not in err, err
    assert "in_features must be an integer >= 1" in err, err
