"""`nnumba experiment list / run`: every experiment of the issue is there, runs,
prints its table and writes PNGs with --out; without matplotlib it says how to
get the figures."""
import json
import os
import subprocess
import sys

import pytest

from nnumba.cli import main
from nnumba.experiments import figures, list_experiments, run_experiment

EXPECTED = ["threshold-logic", "perceptron-mnist", "perceptron-bound", "xor",
            "polynomial-capacity", "random-products", "knn-radius", "hog", "logistic-gd",
            "svm-vs-perceptron", "tanh-vs-relu", "universal-approximation", "replicated-set",
            "minibatch-loss", "conv1d-operators", "cnn-mnist"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_list_shows_every_experiment_in_the_lectures_order():
    out = subprocess.run([sys.executable, "-m", "nnumba", "experiment", "list"],
                         capture_output=True, text=True, check=True).stdout
    names = [line.split()[0] for line in out.splitlines()]
    assert names == EXPECTED
    assert [e.name for e in list_experiments()] == EXPECTED


def test_list_json_says_which_features_each_needs(capsys):
    assert main(["experiment", "list", "--json"]) == 0
    items = {item["name"]: item for item in json.loads(capsys.readouterr().out)}
    assert items["xor"]["features"] == ["XorProduct"]
    assert items["hog"]["features"] == ["HOG"]
    assert items["perceptron-mnist"]["options"] == ["data_dir"]


def test_run_prints_the_table_and_writes_the_png(tmp_path, capsys):
    assert main(["experiment", "run", "threshold-logic", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "xor (3 units)" in out and "all outputs right: True" in out
    png = tmp_path / "threshold-logic.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert f"figure: {png}" in out


def test_run_json_prints_the_numbers(capsys):
    assert main(["experiment", "run", "perceptron-bound", "--fast", "--json"]) == 0
    captured = capsys.readouterr()
    numbers = json.loads(captured.out)  # stdout holds the JSON alone
    assert numbers["perceptron-bound"]["holds"] is True
    assert "gamma asked" in captured.err  # the table went to stderr


def test_without_matplotlib_the_table_prints_and_says_how_to_get_figures(
        tmp_path, capsys, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure"):  # importing them now fails
        monkeypatch.setitem(sys.modules, module, None)
    assert figures.figure_class() is None
    assert main(["experiment", "run", "perceptron-bound", "--fast", "--out",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "k <= bound" in out
    assert 'pip install "nnumba[plots]"' in out
    assert not list(tmp_path.iterdir())


def test_without_out_no_file_and_a_note(capsys):
    result = run_experiment("threshold-logic")
    assert result.figures == []
    assert any("--out DIR" in note for note in result.notes)


def test_unknown_names_and_options_are_refused(capsys):
    assert main(["experiment", "run", "xorr"]) == 2
    assert "did you mean 'xor'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="takes no option"):
        run_experiment("xor", data_dir="/tmp")


def test_without_the_plugin_list_and_run_say_how_to_install_it():
    env = dict(os.environ, NNUMBA_DISABLE_PLUGIN_AUTOLOAD="1")  # as if not installed
    listing = subprocess.run([sys.executable, "-m", "nnumba", "experiment", "list"], env=env,
                             capture_output=True, text=True, check=True).stdout
    assert "hog" in listing and "[needs the nnumba-features plugin: HOG]" in listing
    run = subprocess.run([sys.executable, "-m", "nnumba", "experiment", "run", "xor"],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 2
    assert "pip install -e plugins/nnumba-features" in run.stderr
