"""The CLI as a user meets it: one line and a non-zero exit for any error, the traceback
only with --debug; no silent success (--save "", NaN weights)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnumba.cli import main

DATA = Path(__file__).resolve().parent / "data"


def nnumba_cli(*args):
    return subprocess.run([sys.executable, "-m", "nnumba", *args], capture_output=True,
                          text=True, timeout=300)


def assert_one_line_error(out, command, *fragments):
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nnumba {command}: error: "), out.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_deep_json_spec_is_one_line_and_debug_shows_the_traceback():
    spec = str(DATA / "deep.json")
    assert_one_line_error(nnumba_cli("summary", spec), "summary", spec, "nested deeper")
    for args in (["--debug", "summary", spec], ["summary", spec, "--debug"]):
        out = nnumba_cli(*args)
        assert out.returncode != 0 and "Traceback" in out.stderr and "JSONFileError" in out.stderr


@pytest.mark.parametrize("content", ["", "[{", "\x00\x01"])
def test_bad_spec_files_are_named(tmp_path, content):
    spec = tmp_path / "spec.json"
    spec.write_text(content)
    assert_one_line_error(nnumba_cli("summary", str(spec)), "summary", str(spec))


def test_an_unexpected_error_is_one_line_with_a_hint(monkeypatch, capsys):
    from nnumba.commands import plugins

    def bug(args):
        raise RuntimeError("internal invariant broken")

    monkeypatch.setattr(plugins, "run", bug)
    assert main(["plugins"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: internal invariant broken" in err
    assert "--debug" in err
    with pytest.raises(RuntimeError, match="internal invariant"):
        main(["plugins", "--debug"])


def test_save_to_nowhere_fails_before_training(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "file").write_text("x")
    for dest, fragment in [("", "no file name"), (str(tmp_path / "runs"), "names a folder"),
                           (str(tmp_path / "file" / "w.npz"), "is a file, not a folder")]:
        out = nnumba_cli("train", "--save", dest, "--epochs", "1")
        assert_one_line_error(out, "train", fragment)
        assert "data:" not in out.stdout and "epoch" not in out.stdout  # nothing ran


# ---- classify (needs Pillow) ------------------------------------------------------------

@pytest.fixture
def small_classifier(tmp_path):
    """An image, a spec for 4x4 RGB images and 5 classes, and finite weights for it."""
    image = pytest.importorskip("PIL.Image")
    picture = tmp_path / "img.png"
    rng = np.random.default_rng(0)
    image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(picture)
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps([{"type": "Flatten"},
                                {"type": "Linear", "in_features": 48, "out_features": 5}]))
    weights = {"w": rng.standard_normal((5, 48)).astype(np.float32),
               "b": np.zeros(5, np.float32)}
    return picture, spec, weights


def _classify(picture, spec, weights, tmp_path, *extra):
    np.savez(tmp_path / "w.npz", **weights)
    return main(["classify", str(picture), "--model", str(spec), "--weights",
                 str(tmp_path / "w.npz"), "--size", "4,4", *extra])


def test_classify_works_on_the_small_classifier(small_classifier, tmp_path, capsys):
    assert _classify(*small_classifier, tmp_path, "--top", "2") == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("value, message", [(np.nan, "1.weight holds NaN or infinity"),
                                            (np.inf, "1.weight holds NaN or infinity"),
                                            (1e38, "scores hold NaN or infinity")])
def test_classify_refuses_non_finite_weights_and_scores(small_classifier, tmp_path, capsys,
                                                        value, message):
    picture, spec, weights = small_classifier
    weights["w"][:] = value
    assert _classify(picture, spec, weights, tmp_path) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and "w.npz" in captured.err


def test_classify_refuses_nnumba_nan_weights(small_classifier, tmp_path, capsys):
    picture, *_ = small_classifier
    spec = tmp_path / "linear.json"  # the model of tests/data/nan-weights.npz
    spec.write_text('[{"type": "Linear", "in_features": 3, "out_features": 2}]')
    assert main(["classify", str(picture), "--model", str(spec),
                 "--weights", str(DATA / "nan-weights.npz")]) == 2
    err = capsys.readouterr().err
    assert "nan-weights.npz: parameter 0.weight holds NaN" in err


@pytest.mark.parametrize("pixels", [(100, 100), (40, 40)])  # past the error, past the warning
def test_classify_refuses_decompression_bombs(small_classifier, tmp_path, capsys, monkeypatch,
                                              pixels):
    from PIL import Image
    picture, spec, weights = small_classifier
    bomb = tmp_path / "bomb.png"
    Image.new("RGB", pixels).save(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 1,000-pixel limit stands for 89 M
    assert _classify(bomb, spec, weights, tmp_path) == 2
    err = capsys.readouterr().err
    assert "bomb.png" in err and "decompression bomb" in err and err.count("\n") == 1


def test_classify_refuses_broken_images(small_classifier, tmp_path, capsys):
    picture, spec, weights = small_classifier
    broken = tmp_path / "broken.png"
    broken.write_bytes(picture.read_bytes()[:60])
    assert _classify(broken, spec, weights, tmp_path) == 2
    err = capsys.readouterr().err
    assert "broken.png: not a readable image" in err and err.count("\n") == 1


def test_classify_deep_labels_are_one_line(small_classifier, tmp_path, capsys):
    assert _classify(*small_classifier, tmp_path, "--labels", str(DATA / "deep.json")) == 2
    err = capsys.readouterr().err
    assert "deep.json" in err and "nested deeper" in err and err.count("\n") == 1
