"""`nnumba experiment list / run`: every experiment of the issue is there, runs,
prints its table and writes PNGs with --out; without matplotlib it says how to
get the figures."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnumba.cli import main
from nnumba.experiments import figures, list_experiments, run_experiment

EXPECTED = ["threshold-logic", "perceptron-mnist", "perceptron-bound", "svm-vs-perceptron",
            "xor", "polynomial-capacity", "random-products", "knn-radius", "hog", "mlp-affine",
            "activations", "tanh-vs-relu", "universal-approximation",
            "universal-approximation-2d", "gradient-descent", "logistic-gd", "backprop", "chain-rule",
            "replicated-set", "sgd-local-minima", "minibatch-loss", "image-linear-size",
            "conv1d-operators", "pooling", "cnn-mnist"]
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
    assert items["cnn-mnist"]["options"] == ["data_dir", "lecture"]
    assert all(item["slide"] for item in items.values())  # each names its slide


def test_every_experiment_names_its_slide_and_quotes_the_lecture():
    lecture = (Path(__file__).resolve().parents[2] / "shared" / "seed" / "lecture-mlp.md")
    text = lecture.read_text().replace("*", "") if lecture.exists() else None
    for exp in list_experiments():
        assert exp.slide and exp.quote, exp.name
        if text is not None:  # the quote's opening words are the lecture's, where it is here
            words = exp.quote.split()[:3]
            assert " ".join(words).lower().strip(".,") in text.lower().replace("\n", " "), exp


def test_run_prints_the_table(tmp_path, capsys):
    # Tables print whether or not matplotlib is installed.
    assert main(["experiment", "run", "threshold-logic", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "xor (4 units)" in out and "all outputs right: True" in out


def test_run_writes_the_png(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the figures need matplotlib")
    assert main(["experiment", "run", "threshold-logic", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
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
    err = capsys.readouterr().err
    assert "did you mean 'xor'" in err
    assert "plugin" not in err  # experiments are nnumba's own: no plugin adds one
    with pytest.raises(ValueError, match="takes no option"):
        run_experiment("xor", data_dir="/tmp")


def test_options_an_experiment_does_not_use_are_named(capsys):
    assert main(["experiment", "run", "pooling", "--lecture", "--data-dir", "/nowhere"]) == 0
    out = capsys.readouterr().out
    assert "note: pooling does not use --data-dir" in out
    assert "note: pooling does not use --lecture" in out


def test_without_the_plugin_list_and_run_say_how_to_install_it():
    env = dict(os.environ, NNUMBA_DISABLE_PLUGIN_AUTOLOAD="1")  # as if not installed
    listing = subprocess.run([sys.executable, "-m", "nnumba", "experiment", "list"], env=env,
                             capture_output=True, text=True, check=True).stdout
    assert "hog" in listing and "[needs the nnumba-features plugin: HOG]" in listing
    run = subprocess.run([sys.executable, "-m", "nnumba", "experiment", "run", "xor"],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 2
    assert "pip install -e plugins/nnumba-features" in run.stderr
