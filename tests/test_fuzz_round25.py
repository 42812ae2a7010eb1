"""Fuzz round 25: classify's labels for a one-output (sign) model, a saved model with a
feature layer in front training on, a --save path through a new folder and "..", a
misspelt NNUMBA_FASHION_MNIST, the perceptron experiment on a folder without 1s, a
--train-size leaving one class, and classify --num-classes for a model whose option is
"classes". References: the model's own sign computed with numpy, the library call that
accepts the same path, the loader given the same folder directly.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import nnumba

NNUMBA = [sys.executable, "-m", "nnumba"]
ENV = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _cli(args, cwd, env=None, timeout=300):
    return subprocess.run(NNUMBA + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, env=env or ENV, timeout=timeout)


def _one_clear_line(proc):
    """A refusal: status 2, one error line, no traceback and no 'unexpected'."""
    err = proc.stderr.strip()
    return (proc.returncode == 2 and "Traceback" not in err and "unexpected" not in err
            and len(err.splitlines()) == 1)


# ---- 1. classify: a one-output (sign) model with --labels other than {0, 1} -----------

@pytest.fixture(scope="module")
def sign_model(tmp_path_factory):
    """A one-output image model (its sign chooses the class, as `train --loss Hinge`
    saves it) whose score is > 0 on the test image, saved with classes ['three', 'seven'];
    and that image. The sign is computed here with numpy, independently of classify."""
    Image = pytest.importorskip("PIL.Image", reason="classify reads images with Pillow")
    d = tmp_path_factory.mktemp("sign")
    model = nnumba.Sequential.from_spec(
        [{"type": "Flatten"}, {"type": "Linear", "in_features": 784, "out_features": 1}], seed=0)
    params = dict(model.params())
    params["1.weight"].value[...] = 0.01
    params["1.bias"].value[...] = 0.5
    nnumba.save(model, d / "sign.npz", classes=["three", "seven"], input_shape=(1, 28, 28))
    pixels = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(d / "img.png")
    x = pixels.astype(np.float64).ravel() / 255  # classify's default for a saved model
    score = 0.01 * x.sum() + 0.5
    assert score > 0  # the positive class: output index 1, 'seven'
    return d


@pytest.mark.parametrize("labels", ['{"0": "neg", "5": "pos"}', "neg\n\npos\n"],
                         ids=["dict_keys_0_5", "text_with_blank_line"])
def test_sign_model_labels_without_class_1_are_refused_not_a_keyerror(sign_model, labels):
    """It said: 'KeyError: 1 (unexpected: ... please report it)', status 1
    (classify.py:345 indexes labels[int(s >= 0)] after checking only len(labels) == 2)."""
    (sign_model / "labels.txt").write_text(labels)
    proc = _cli(["classify", "img.png", "--weights", "sign.npz", "--labels", "labels.txt"],
                sign_model)
    assert _one_clear_line(proc), proc.stderr


def test_sign_model_with_one_label_does_not_name_the_negative_class(sign_model):
    """It said: the positive score is printed as index 0, label 'three' (the negative
    class), while without --labels classify prints 'seven': with one label, signs is
    False and labels.get(0) names every image. Either a refusal or the positive class."""
    (sign_model / "one.json").write_text('["three"]')
    proc = _cli(["classify", "img.png", "--weights", "sign.npz", "--labels", "one.json",
                 "--json"], sign_model)
    if proc.returncode != 0:
        assert _one_clear_line(proc), proc.stderr
        return
    top = json.loads(proc.stdout)["top"][0]
    assert top["index"] == 1 and top["label"] != "three", top


def test_sign_model_label_for_class_1_alone_is_not_refused_as_out_of_range(sign_model):
    """It said: '--labels names class 1, but the model has one output, whose sign chooses
    between classes 0 and 1' -- class 1 is one of the two it names. Either it is used
    (the score is positive: class 1) or the refusal must not contradict itself."""
    (sign_model / "k1.json").write_text('{"1": "seven"}')
    proc = _cli(["classify", "img.png", "--weights", "sign.npz", "--labels", "k1.json",
                 "--json"], sign_model)
    if proc.returncode == 0:
        assert json.loads(proc.stdout)["top"][0]["label"] == "seven"
    else:
        assert _one_clear_line(proc), proc.stderr
        assert "names class 1, but" not in proc.stderr, proc.stderr


# ---- 2. --save through 'NEW/..' ----------------------------------------------------------

def test_save_path_through_a_new_folder_and_dotdot_is_accepted(tmp_path):
    """check_save_path(create=False) (what `nnumba train --save` calls) refuses
    'new/../w.npz' with 'Directory not empty' and leaves 'new/' behind: it tries to
    rmdir 'new/..' (io.py:78-88). The reference: nnumba.save writes the same path."""
    from nnumba.io import check_save_path
    model = nnumba.Sequential.from_spec([{"type": "Linear", "in_features": 2,
                                          "out_features": 2}], seed=0)
    nnumba.save(model, tmp_path / "ref" / "new" / ".." / "w.npz")  # the reference: fine
    assert (tmp_path / "ref" / "w.npz").is_file()
    target = tmp_path / "cmd" / "new2" / ".." / "w.npz"
    check_save_path(target, create=False)  # it said: SaveError "Directory not empty"
    assert not (tmp_path / "cmd").exists(), "a checked path must leave no folders behind"


def test_train_save_through_a_new_folder_and_dotdot(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.random.default_rng(0).normal(size=(40, 3)),
             y_train=np.arange(40) % 2)
    proc = _cli(["train", "--data", "d.npz", "--epochs", "1", "--save", "new/../w.npz"],
                tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert nnumba.load_model(tmp_path / "w.npz").num_params() > 0


# ---- 3. NNUMBA_FASHION_MNIST naming a missing folder -------------------------------------

def test_fashion_mnist_env_naming_a_missing_folder_is_an_error(tmp_path, monkeypatch):
    """A typo in NNUMBA_FASHION_MNIST silently fell back to
    /usr/share/datasets/fashion-mnist (datasets.py:173-175); the same folder given as
    root (--data-dir) is an error, and so is an existing folder without the files."""
    from nnumba.data import load_dataset
    from nnumba.errors import NnumbaError
    missing = tmp_path / "no-such-folder"
    with pytest.raises((NnumbaError, OSError)):  # the reference: the folder given directly
        load_dataset("fashion-mnist", root=str(missing))
    monkeypatch.setenv("NNUMBA_FASHION_MNIST", str(missing))
    with pytest.raises((NnumbaError, OSError)):
        load_dataset("fashion-mnist")


# ---- 4. perceptron-mnist on a --data-dir without one of the two classes ------------------

def _idx(code, shape, data: bytes) -> bytes:
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + data


def test_perceptron_mnist_experiment_refuses_a_folder_without_class_1(tmp_path):
    """It said: 'mnist: 5 train / 3 test images of 0 and 1 ... converged: zero training
    errors' on a folder holding only 0s (no 1 at all), status 0. The reference: `nnumba
    train --trainer perceptron` on the same folder refuses ('class 1 has no training
    samples ... perceptron needs both classes')."""
    d = tmp_path / "mn"
    d.mkdir()
    (d / "train-images-idx3-ubyte").write_bytes(_idx(8, (5, 28, 28), bytes(5 * 784)))
    (d / "t10k-images-idx3-ubyte").write_bytes(_idx(8, (3, 28, 28), bytes(3 * 784)))
    (d / "train-labels-idx1-ubyte").write_bytes(_idx(8, (5,), bytes(5)))
    (d / "t10k-labels-idx1-ubyte").write_bytes(_idx(8, (3,), bytes(3)))
    ref = _cli(["train", "--dataset", "mnist", "--data-dir", d, "--trainer", "perceptron",
                "--epochs", "2"], tmp_path)
    assert _one_clear_line(ref) and ("class 1 has no training samples" in ref.stderr
                                     or "one class only" in ref.stderr), ref.stderr
    proc = _cli(["experiment", "run", "perceptron-mnist", "--fast", "--data-dir", d], tmp_path)
    assert _one_clear_line(proc), proc.stdout[-800:]


# ---- 5. --train-size cutting a class-sorted set down to one class ------------------------

def test_train_size_leaving_one_class_is_refused_or_noted(tmp_path):
    """A CSV sorted by label and --train-size 5 train a 'classifier' on one class, without
    a word (status 0, test accuracy 50 %). The reference: load_arrays refuses a file whose
    training labels hold one class ('a classifier needs two classes or more'), and the
    sign losses refuse the same cut ('class 'b' has no training samples')."""
    from nnumba.data import DataFileError, load_arrays
    rows = sorted([(i * 0.1, (i * 7 % 5) * 0.3, "ab"[i % 2]) for i in range(40)],
                  key=lambda r: r[2])
    (tmp_path / "sorted.csv").write_text(
        "a,b,label\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    (tmp_path / "one.csv").write_text(
        "a,b,label\n" + "".join(f"{a},{b},a\n" for a, b, _ in rows[:5]))
    with pytest.raises(DataFileError, match="one class"):  # the reference
        load_arrays(tmp_path / "one.csv")
    proc = _cli(["train", "--data", "sorted.csv", "--train-size", "5", "--epochs", "1"],
                tmp_path)
    assert proc.returncode == 2 or "one class" in proc.stdout + proc.stderr, proc.stdout


# ---- 6. classify --num-classes: usable with alexnet only ---------------------------------

def test_classify_num_classes_reaches_a_model_whose_option_is_classes(tmp_path):
    """`--num-classes N` is documented as 'option of the named model', but is passed as
    num_classes=N, which only alexnet takes: lenet, mlp and logreg call it `classes`, so
    any value (even their own default, 10) ends in "model 'lenet' has no option
    num_classes". The reference: nnumba.build('lenet', classes=10) is that model."""
    Image = pytest.importorskip("PIL.Image", reason="classify reads images with Pillow")
    ref = nnumba.build("lenet", seed=0, classes=10)
    np.savez(tmp_path / "w.npz", **{f"t{i}": p.value for i, (_, p) in enumerate(ref.params())})
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "img.png")
    proc = _cli(["classify", "img.png", "--model", "lenet", "--weights", "w.npz",
                 "--num-classes", "10", "--top", "1"], tmp_path)
    assert proc.returncode == 0, proc.stderr


# ---- 7. a saved model with a gradient-free feature layer in front cannot train on ---------

def test_saved_model_with_a_leading_feature_layer_trains_on(tmp_path):
    """[HOG, Flatten, Linear] (HOG features and a linear classifier, as the lecture's hog
    experiment) trains from its spec, but `--model SAVED.npz` refuses it: 'a saved
    perceptron (no gradient) trains on with nothing' (train_saved.py:23 requires every
    layer to have a gradient; the model itself only needs one where a gradient must pass,
    contract.py:392). The reference: the same spec, as a file, trains (status 0)."""
    pytest.importorskip("nnumba_features")
    spec = [{"type": "HOG"}, {"type": "Flatten"},
            {"type": "Linear", "in_features": 81, "out_features": 10}]
    (tmp_path / "hog.json").write_text(json.dumps(spec))
    small = ["--train-size", "60", "--test-size", "20", "--epochs", "1"]
    ref = _cli(["train", "--model", "hog.json", "--save", "hog.npz", *small], tmp_path)
    assert ref.returncode == 0, ref.stderr  # the reference: it trains from the spec
    proc = _cli(["train", "--model", "hog.npz", *small], tmp_path)
    assert proc.returncode == 0, proc.stderr
