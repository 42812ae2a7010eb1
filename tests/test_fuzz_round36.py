"""Fuzz round 36: files and text given to the CLI.  A saved model renamed (W.NPZ,
w.npz.bak) or a spec file written SPEC.JSON was looked up as a model name; cnn-mnist's
--data-dir skipped the data checks train makes; --classes read "1_0" and other scripts'
digits as 10; a labels file of one name a line starting "[background]" was refused as
broken JSON.  The CLI runs in a subprocess, as a user would."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ENV = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def cli(*args, cwd):
    p = subprocess.run([sys.executable, "-m", "nnumba", *map(str, args)], cwd=cwd, env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert "Traceback" not in p.stderr, p.stderr
    return p


@pytest.fixture
def saved_image_model(tmp_path):
    """An nnumba.save'd MNIST-shaped model, and a 28x28 gray PNG."""
    Image = pytest.importorskip("PIL.Image")
    import nnumba
    from nnumba.layers import Flatten, Linear
    model = nnumba.Sequential(Flatten(), Linear(784, 10), seed=0)
    nnumba.save(model, tmp_path / "w.npz", classes=[str(i) for i in range(10)],
                input_shape=(1, 28, 28))
    pixels = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    return tmp_path


# ---- 1. a saved model recognised by content, refused by its suffix --------------------

@pytest.mark.parametrize("copy_name", ["W.NPZ", "w.npz.bak", "w_weights"])
def test_classify_weights_of_a_renamed_nnumba_save_classify_as_the_original(saved_image_model,
                                                                            copy_name):
    """HEAD: `classify IMG --weights w.npz.bak` (or W.NPZ) exits 2 with "unknown model
    'w.npz.bak'": _stored() recognises the nnumba save by its content (is_nnumba_npz:
    "a copy renamed w.npz.bak or w.bin is one too") and sets args.model to the path,
    then _build/_input_shape decide by the case-sensitive suffix ".npz" that it is a
    registered model's name. Reference: the same bytes named w.npz, and
    nnumba.load_model, which loads every one of these names."""
    import nnumba
    d = saved_image_model
    shutil.copy(d / "w.npz", d / copy_name)
    assert len(nnumba.load_model(d / copy_name).layers) == 2  # the library reads it
    want = cli("classify", "digit.png", "--weights", "w.npz", "--json", "--top", "10", cwd=d)
    assert want.returncode == 0, want.stderr
    got = cli("classify", "digit.png", "--weights", copy_name, "--json", "--top", "10", cwd=d)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["top"] == json.loads(want.stdout)["top"]


@pytest.mark.parametrize("suffix", [".JSON", ".NPZ"])
def test_train_model_file_with_an_upper_case_suffix_is_not_an_unknown_model_name(
        saved_image_model, suffix):
    """HEAD: `nnumba train --model SPEC.JSON` (or SAVED.NPZ) exits 2 with "unknown model
    'SPEC.JSON'. ... Known models: alexnet, ..." (train.py:_from_file compares the
    suffix case-sensitively), though the file exists, --data X.CSV is read
    (arrays.py lowers the suffix) and nnumba.load_model reads X.NPZ. It should train from
    the file, or at least say that a spec/saved model must end in .json/.npz (as
    `summary` does)."""
    d = saved_image_model
    if suffix == ".JSON":
        (d / f"spec{suffix}").write_text(json.dumps(
            [{"type": "Flatten"}, {"type": "Linear", "in_features": 784, "out_features": 10}]))
        name = f"spec{suffix}"
    else:
        shutil.copy(d / "w.npz", d / f"w{suffix}")
        name = f"w{suffix}"
    p = cli("train", "--model", name, "--epochs", "1", "--train-size", "100",
            "--test-size", "50", cwd=d)
    assert p.returncode == 0 or (p.returncode == 2 and "unknown model" not in p.stderr), \
        p.stderr


# ---- 2. cnn-mnist skips the data set checks that nnumba train makes ------------------

def test_cnn_mnist_experiment_refuses_a_one_class_mnist_folder_as_train_does(tmp_path):
    """HEAD: `experiment run cnn-mnist --data-dir D` where D's training labels are one
    class trains on it and reports "mnist ... test error 0.00%" beside the lecture's
    1 % claim, calling it "the full MNIST given with --data-dir: the lecture's data"
    (exit 0). experiments/cnn.py:73 calls load_mnist() directly, skipping
    data/check.py:check_dataset. Reference: `nnumba train --dataset mnist --data-dir D`
    refuses the same folder: "y_train holds one class only"."""
    from nnumba.data.idx import write_idx
    rng = np.random.default_rng(0)
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8))
    write_idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28), dtype=np.uint8))
    write_idx(d / "train-labels-idx1-ubyte", np.full(20, 3, np.uint8))
    write_idx(d / "t10k-labels-idx1-ubyte", np.full(5, 3, np.uint8))
    ref = cli("train", "--dataset", "mnist", "--data-dir", d, "--epochs", "1", "--model",
              "logreg", cwd=tmp_path)
    assert ref.returncode == 2 and "one class" in ref.stderr, ref.stderr
    p = cli("experiment", "run", "cnn-mnist", "--data-dir", d, "--fast", cwd=tmp_path)
    assert p.returncode == 2 and "one class" in p.stderr, (p.returncode, p.stdout[-800:])


# ---- 3. --classes reads "1_0" and other scripts' digits as a class number -----------

@pytest.mark.parametrize("given", ["0,1_0", "0,\u0661\u0660"])
def test_classes_option_refuses_an_underscored_or_non_ascii_number(tmp_path, given):
    """HEAD: with a CSV of 12 classes, `--trainer perceptron --classes 0,1_0` trains
    class 0 against class 10 (exit 0): train.py:_class_number falls back to int(name),
    which reads "1_0" as 10 and Arabic-Indic "١٠" as 10. The CSV reader refuses such
    text as a number ("which Python reads as 10", fuzz34's fix for --label-column
    accepts ASCII digits only). Reference: "1_0" and "١٠" are no class name of the
    data (its classes are "0".."11") and not ASCII digits."""
    rng = np.random.default_rng(0)
    rows = ["a,b,label"] + [f"{rng.random():.3f},{rng.random():.3f},{i % 12}"
                            for i in range(120)]
    (tmp_path / "c12.csv").write_text("\n".join(rows) + "\n")
    p = cli("train", "--data", "c12.csv", "--trainer", "perceptron", "--classes", given,
            cwd=tmp_path)
    assert p.returncode == 2, p.stderr[:400]


# ---- 4. a one-per-line labels file whose first name starts with [ or { -------------

@pytest.mark.parametrize("first", ["[background]", "{blank}"])
def test_labels_one_per_line_whose_first_name_starts_with_a_bracket(saved_image_model, first):
    """HEAD: `classify --labels L` with L = "[background]\\ncat\\n..." (one name per line,
    as --help says) exits 2: "not a JSON or literal list/dict of labels (not valid
    JSON ...)". classify.py:load_labels takes any text starting with [ or { as JSON or a
    literal and never falls back to lines. Reference: the same file whose first line
    is "background" is read as one name per line."""
    d = saved_image_model
    names = [first] + [f"name{i}" for i in range(1, 10)]
    (d / "labels.txt").write_text("\n".join(names) + "\n")
    (d / "plain.txt").write_text("\n".join(["background"] + names[1:]) + "\n")
    ref = cli("classify", "digit.png", "--weights", "w.npz", "--labels", "plain.txt",
              "--json", "--top", "10", cwd=d)
    assert ref.returncode == 0, ref.stderr
    ref_names = {t["index"]: t["label"] for t in json.loads(ref.stdout)["top"]}
    assert ref_names == dict(enumerate(["background"] + names[1:]))
    p = cli("classify", "digit.png", "--weights", "w.npz", "--labels", "labels.txt",
            "--json", "--top", "10", cwd=d)
    assert p.returncode == 0, p.stderr
    assert {t["index"]: t["label"] for t in json.loads(p.stdout)["top"]} == dict(enumerate(names))


def test_save_keeps_an_upper_case_npz_suffix(tmp_path):
    """save('W.NPZ') wrote W.NPZ.npz: the suffix is read in any case, as the commands read
    a model file's (paths.model_file)."""
    import nnumba
    model = nnumba.build("logreg", seed=0)
    written = nnumba.save(model, tmp_path / "W.NPZ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["W.NPZ"]
    np.testing.assert_array_equal(nnumba.load_model(written).flat_params, model.flat_params)
