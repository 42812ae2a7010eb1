"""Fuzz round 50: the command line. A CSV field in another script's digits ("\u0661")
was read as a number (a label "\u0661" beside "1" made one class); classify took an
empty file name as "." or an image named ""."""
import os
import subprocess
import sys

import pytest

ENV = dict(os.environ, NUMBA_NUM_THREADS="1")


def nnumba(tmp_path, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "nnumba", *args], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _csv(path, label_pair, feature=None):
    rows = ["a,b,label"] + [f"{i},{i % 3},{label_pair[i % 2]}" for i in range(20)]
    if feature is not None:
        rows[3] = f"{feature},1,{label_pair[0]}"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_csv_labels_in_other_scripts_digits_are_not_merged_silently(tmp_path):
    """Finding 1: labels '\u0661' (ARABIC-INDIC DIGIT ONE) and '1' are two different
    spellings in the file; nnumba reads both as the number 1 and then says the file
    holds one class only, without naming the field. Expected: either two classes
    (read as names) or a clear error that names the non-ASCII digit field, as it does
    for '1_0' ('which Python reads as 10')."""
    _csv(tmp_path / "d.csv", ["\u0661", "1"])
    r = nnumba(tmp_path, "train", "--data", "d.csv", "--epochs", "1", "--json")
    if r.returncode == 0:
        import json
        assert json.loads(r.stdout)["test_accuracy"] is not None
    else:
        assert r.returncode == 2, r.stderr
        assert "one class only" not in r.stderr, r.stderr
        assert "\u0661" in r.stderr or "U+0661" in r.stderr or "ASCII" in r.stderr, r.stderr


def test_csv_feature_in_other_scripts_digits_is_refused_like_underscores(tmp_path):
    """Finding 1 (features): a field '\u0661' is read silently as 1.0, while '1_000' is
    refused ('which Python reads as 1000') and `--classes` refuses non-ASCII digits.
    Expected: a clear error naming line and column."""
    _csv(tmp_path / "d.csv", ["0", "1"], feature="\u0661")
    r = nnumba(tmp_path, "train", "--data", "d.csv", "--epochs", "1")
    assert r.returncode == 2, (r.returncode, r.stdout[-300:])
    assert "line 4" in r.stderr and "'a'" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["classify", "--weights", "", "x.png"],
                                  ["classify", "--weights", "w.npz", ""]])
def test_classify_refuses_empty_file_names_as_train_does(tmp_path, args):
    """Finding 2: `classify --weights ''` reports '.: cannot read it as a weights file
    (Is a directory)' and `classify ''` reports ': not a readable image'; train says
    "--data needs a file name, got ''". Expected: the option named, '' shown."""
    if "w.npz" in args:  # a real weights file, so that the image is what is refused
        made = nnumba(tmp_path, "train", "--epochs", "1", "--train-size", "100",
                      "--test-size", "10", "--save", "w.npz")
        assert made.returncode == 0, made.stderr
    r = nnumba(tmp_path, *args)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "''" in line, line
