"""Issue 13, case by case, as a user meets it: each bad spec through ``nnumba train``,
``nnumba summary``, ``nnumba classify`` (one line naming the file and what is wrong,
exit 2, no traceback) and through the library (a specific nnumba error), a stored
spec in a weights file through ``load_model``, deep JSON, and float sizes."""
import json
import subprocess
import sys

import numpy as np
import pytest

import nnumba
from nnumba import Sequential
from nnumba.errors import JSONFileError, SpecError, TooLargeError, WeightsError
from nnumba.layers import Conv2d, Dropout, Linear, MaxPool2d
from nnumba.summary import summarize

DEEP = "[" * 100_000 + "]" * 100_000
HUGE = [{"type": "Flatten"}, {"type": "Linear", "in_features": 10**6, "out_features": 10**6}]

# (id, spec file text, library error, fragments the message must hold)
CASES = [
    ("missing argument", json.dumps([{"type": "Linear", "in_features": 784}]), SpecError,
     ["item #0 (Linear)", "'out_features'"]),
    ("unknown keyword", json.dumps([{"type": "ReLU", "slope": 2}]), SpecError,
     ["item #0 (ReLU)", "'slope'"]),
    ("type not a string", json.dumps([{"type": 3}]), SpecError, ["item #0", "'type'"]),
    ("in_features null", json.dumps([{"type": "Flatten"},
                                     {"type": "Linear", "in_features": None,
                                      "out_features": 10}]),
     SpecError, ["item #1 (Linear)", "in_features", "None"]),
    ("float size", json.dumps([{"type": "Flatten"},
                               {"type": "Linear", "in_features": 784.9, "out_features": 10}]),
     SpecError, ["item #1 (Linear)", "in_features", "784.9"]),
    ("integral float size", json.dumps([{"type": "Flatten"},
                                        {"type": "Linear", "in_features": 784.0,
                                         "out_features": 10}]),
     SpecError, ["in_features", "784.0"]),
    ("size past any array", json.dumps([{"type": "Linear", "in_features": 10**400,
                                         "out_features": 10}]),
     TooLargeError, ["item #0 (Linear)", "in_features", "more than any array"]),
    ("terabytes", json.dumps(HUGE), TooLargeError, ["item #1 (Linear)", "weight", "GB"]),
    ("deep", DEEP, SpecError, ["nested deeper than 100"]),
    ("deep field", '[{"type": "Linear", "in_features": ' + DEEP + ', "out_features": 3}]',
     SpecError, ["nested deeper than 100"]),
]
IDS = [case[0] for case in CASES]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "nnumba", *args], capture_output=True,
                          text=True, timeout=300)


def assert_one_line_error(out, command, *fragments):
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nnumba {command}: error: "), out.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def spec_file(tmp_path, request):
    path = tmp_path / "spec.json"
    path.write_text(request.param[1])
    return path, request.param


@pytest.mark.parametrize("spec_file", CASES, ids=IDS, indirect=True)
def test_train(spec_file):
    path, (name, _, _, fragments) = spec_file
    out = cli("train", "--model", str(path), "--epochs", "1", "--train-size", "100")
    assert_one_line_error(out, "train", str(path), *fragments)
    if name != "terabytes":  # what can be told from the file alone is, before any data
        assert "data:" not in out.stdout


@pytest.mark.parametrize("spec_file", CASES, ids=IDS, indirect=True)
def test_summary(spec_file):
    path, (name, _, _, fragments) = spec_file
    out = cli("summary", str(path))
    if name == "terabytes":  # sized, never allocated: what summary is for
        assert out.returncode == 0 and "4.0 TB" in out.stdout, out.stderr
    else:
        assert_one_line_error(out, "summary", str(path), *fragments)


@pytest.mark.parametrize("spec_file", CASES, ids=IDS, indirect=True)
def test_classify(spec_file, tmp_path):
    image = pytest.importorskip("PIL.Image")
    path, (_, _, _, fragments) = spec_file
    picture = tmp_path / "img.png"
    image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(picture)
    np.savez(tmp_path / "w.npz", w=np.zeros(3, np.float32))
    out = cli("classify", str(picture), "--model", str(path), "--weights",
              str(tmp_path / "w.npz"))
    assert_one_line_error(out, "classify", str(path), *fragments)


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(CASES[0][1])
    out = cli("summary", str(path), "--debug")
    assert out.returncode != 0 and "Traceback" in out.stderr and "SpecError" in out.stderr


@pytest.mark.parametrize("name, text, error, fragments", CASES, ids=IDS)
def test_library(name, text, error, fragments):
    with pytest.raises(error) as raised:
        Sequential.from_spec(text)
    message = str(raised.value)
    assert "\n" not in message and all(f in message for f in fragments), message
    if name not in ("deep", "deep field"):
        with pytest.raises(error):
            Sequential.from_spec(json.loads(text))
        with pytest.raises(error):
            nnumba.build(json.loads(text))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("stored") / "model.npz"
    nnumba.save(nnumba.build([{"type": "Linear", "in_features": 4, "out_features": 3}]), path)
    return dict(np.load(path))


@pytest.mark.parametrize("name, text, error, fragments", CASES, ids=IDS)
def test_load_model_with_a_stored_spec(weights, tmp_path, name, text, error, fragments):
    arrays = dict(weights)
    arrays["__nnumba_spec__"] = np.array('{"spec": ' + text + ', "dtype": "float32"}')
    path = tmp_path / "edited.npz"
    np.savez(path, **arrays)
    expected = TooLargeError if error is TooLargeError else WeightsError
    with pytest.raises(expected) as raised:
        nnumba.load_model(path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message, message
    assert all(f in message for f in fragments), message


def test_deep_labels_file(tmp_path):
    """classify --labels with JSON nested 100,000 deep: one line naming the file."""
    image = pytest.importorskip("PIL.Image")
    picture = tmp_path / "img.png"
    image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(picture)
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps([{"type": "Flatten"},
                                {"type": "Linear", "in_features": 48, "out_features": 2}]))
    nnumba.save(nnumba.build(json.loads(spec.read_text())), tmp_path / "w.npz")
    labels = tmp_path / "labels.json"
    labels.write_text(DEEP)
    out = cli("classify", str(picture), "--model", str(spec), "--weights",
              str(tmp_path / "w.npz"), "--size", "4,4", "--labels", str(labels))
    assert_one_line_error(out, "classify", str(labels), "nested deeper than 100")


def test_deep_spec_file_in_the_library(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text(DEEP)
    with pytest.raises(JSONFileError, match="deep.json: JSON nested deeper than 100"):
        summarize(path, input_shape=(4,))


@pytest.mark.parametrize("build", [lambda: Linear(2.7, 5), lambda: Linear(784.0, 5),
                                   lambda: Linear(5, True), lambda: Conv2d(3, 4, 2.5),
                                   lambda: Conv2d(3, 4, [3, 3.0]), lambda: MaxPool2d(2, 1.5),
                                   lambda: Dropout(seed=1.5), lambda: Dropout(p=10**400)])
def test_float_sizes_are_refused_by_the_constructors(build):
    with pytest.raises(SpecError, match="must be"):
        build()


@pytest.mark.parametrize("kwargs", [{"batch": 2.7}, {"batch": 0}, {"input_shape": (2.7,)},
                                    {"input_shape": (784.0,)}, {"input_shape": ()}])
def test_summarize_sizes_are_integers(kwargs):
    options = {"input_shape": (4,), **kwargs}
    with pytest.raises(nnumba.ShapeError):
        summarize([{"type": "Linear", "in_features": 4, "out_features": 2}], **options)


def test_sizes_no_array_can_have_are_refused_before_any_arithmetic():
    # 10**200 squared overflowed the float the memory check computes in (OverflowError).
    with pytest.raises(TooLargeError, match="more than any array"):
        Linear(10**200, 10**200)
    with pytest.raises(TooLargeError, match="needs"):
        Linear(2**62, 2**62)
