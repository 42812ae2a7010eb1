"""Fuzz round 18: where a user's files were replaced without a word (a hand-written
index page under `experiment run all --out`, another data set's archives of MNIST's
names under `--download`), a kit that blamed a correct layer for its own bad seed,
and a --classes line that showed numbers where the data names its classes."""
import numpy as np
import pytest

import nnumba
from nnumba import testing
from nnumba.cli import main


def test_experiment_run_all_keeps_a_users_own_index_page(tmp_path, monkeypatch, capsys):
    """`nnumba experiment run all --out DIR` writes DIR/index.html and DIR/index.md over
    whatever the user had there (a project's docs/index.md, `--out .`), silently, where
    `train --save` refuses to replace a file that is not its own."""
    import nnumba.experiments as experiments
    monkeypatch.setattr(experiments, "list_experiments",   # one fast experiment for "all"
                        lambda: [experiments.get_experiment("threshold-logic")])
    mine_md, mine_html = "# My project's own page\n", "<html>mine</html>\n"
    (tmp_path / "index.md").write_text(mine_md)
    (tmp_path / "index.html").write_text(mine_html)
    status = main(["experiment", "run", "all", "--fast", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert (tmp_path / "index.md").read_text() == mine_md, (status, err)
    assert (tmp_path / "index.html").read_text() == mine_html, (status, err)


def test_download_mnist_keeps_a_users_other_file_of_the_same_name(tmp_path, monkeypatch):
    """download_mnist (nnumba train --dataset mnist --data-dir DIR --download) replaces a
    file of DIR named like an MNIST archive whose digest is not MNIST's: Fashion-MNIST and
    KMNIST use the very same four file names, so a wrong --data-dir swaps the user's data
    set for MNIST without a word.  (The mirror here is a local folder, file://, serving
    stand-in archives whose digests the test puts in place of MNIST's.)"""
    import hashlib
    import importlib
    dl = importlib.import_module("nnumba.data.download")  # nnumba.data.download is the function
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    digests = {}
    for name in dl.MNIST_SHA256:
        data = f"mirror's {name}".encode()
        (mirror / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    monkeypatch.setattr(dl, "MNIST_SHA256", digests)
    monkeypatch.setenv("NNUMBA_MNIST_MIRROR", mirror.as_uri() + "/")
    root = tmp_path / "fashion"
    root.mkdir()
    mine = root / "train-images-idx3-ubyte.gz"
    mine.write_bytes(b"the user's own Fashion-MNIST training images")
    try:
        dl.download_mnist(root, progress=False)
    except (nnumba.NnumbaError, OSError, ValueError) as exc:  # refusing, naming it, is fine
        assert "train-images-idx3-ubyte.gz" in str(exc)
    assert mine.read_bytes() == b"the user's own Fashion-MNIST training images"


@pytest.mark.parametrize("seed", [None, -1, "x", 1.5])
def test_check_layer_blames_a_bad_seed_not_the_layer(seed):
    """check_layer(..., seed=None) tells the author of a correct layer (here the built-in
    Linear) that "two copies reset from generators of one seed differ in weight: draw every
    initial value from the rng", and seed=-1 / "x" / 1.5 that a ValueError/TypeError "was
    raised by its code": the kit's own argument, not the layer, is at fault.  Either run
    (None: one fresh seed for both copies) or refuse naming ``seed``."""
    from nnumba.layers import Linear
    from nnumba.testing import check_layer
    try:
        check_layer(Linear, {"in_features": 2, "out_features": 3}, (2, 2), seed=seed)
    except Exception as exc:  # noqa: BLE001 - what it says is the point
        message = str(exc)
        assert "seed" in message and "raised by its code" not in message \
            and "differ" not in message, message


def test_the_two_classes_line_names_the_classes_the_user_gave(tmp_path, capsys):
    """--classes NEG,POS on data whose class names are numerals: names sort as text
    ('1', '10', '2'), so '1' is class 0 and '10' class 1, and train says "targets for
    Hinge: class 0 -> -1, class 1 -> +1" -- which reads as the class named 1 being +1,
    the opposite of what it trains."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = np.array(["1", "2", "10"])[np.arange(60) % 3]
    data = tmp_path / "numerals.npz"
    np.savez(data, x_train=x, y_train=y)
    assert main(["train", "--data", str(data), "--loss", "Hinge", "--classes", "1,10",
                 "--epochs", "1"]) == 0
    out = capsys.readouterr()
    line = next(t for t in (out.out + out.err).splitlines() if t.startswith("targets for"))
    assert "class 1 -> +1" not in line and "10" in line, line


def test_a_report_nnumba_wrote_is_replaced_by_the_next_run(tmp_path, monkeypatch, capsys):
    import nnumba.experiments as experiments
    monkeypatch.setattr(experiments, "list_experiments",
                        lambda: [experiments.get_experiment("threshold-logic")])
    for _ in range(2):
        assert main(["experiment", "run", "all", "--fast", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "index.md").read_text().startswith("# The Multi-Layer Perceptron")
    (tmp_path / "index.md").unlink()
    (tmp_path / "index.md").mkdir()  # a folder in the way: named before anything runs
    assert main(["experiment", "run", "all", "--fast", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "index.md there is a folder" in err and "threshold-logic" not in err


def test_a_fitted_estimator_pickles_without_its_training_scratch():
    """Right after fit, a pickled NNClassifier("lenet") carried the convolution's kept
    im2col columns and batch-inner gradient (5.5 MB for 0.48 MB of weights): 9.8 MB,
    5x what it pickles to once a predict has run.  A copy leaves the kernels' kept
    arrays and the reused buffers behind; it predicts and trains on the same."""
    pytest.importorskip("sklearn")
    import pickle
    from nnumba.data import load_dataset
    from nnumba.sklearn import NNClassifier
    data = load_dataset("mnist-5k")
    x, y = data.x_train[:300].reshape(300, -1), data.y_train[:300]
    clf = NNClassifier("lenet", epochs=1, random_state=0).fit(x, y)
    kept = sum(a.nbytes for layer in clf.model_.layers
               for a in (layer.__dict__.get("_keep") or {}).values() if hasattr(a, "nbytes"))
    assert kept > 4e6  # what the copy must leave behind
    blob = pickle.dumps(clf)
    twin = pickle.loads(blob)
    assert len(blob) < kept  # smaller than the scratch alone: none of it went in
    assert all(not layer.__dict__.get("_keep") and not layer._buffers
               for layer in twin.model_.layers)
    np.testing.assert_array_equal(twin.predict_proba(x[:50]), clf.predict_proba(x[:50]))
    twin.partial_fit(x[:100], y[:100])
    clf.partial_fit(x[:100], y[:100])
    np.testing.assert_array_equal(twin.model_.flat_params, clf.model_.flat_params)


@pytest.mark.parametrize("name, option, value", [
    ("random-products", "seeds", 0),          # IndexError: list index out of range
    ("perceptron-bound", "margins", ()),      # ZeroDivisionError
    ("logistic-gd", "iterations", 0),         # numpy: zero-size array to reduction operation
])
def test_an_experiments_bad_option_is_one_error_naming_it(name, option, value, capsys):
    """run_experiment passes a recipe's keyword options through (Experiment.run: "options
    are its keyword arguments beyond out_dir and fast"), checking their names but not their
    values: these end in a bare Python error from deep inside the recipe."""
    from nnumba.experiments import run_experiment
    with pytest.raises((nnumba.NnumbaError, ValueError, TypeError), match=option):
        run_experiment(name, fast=True, **{option: value})


@pytest.mark.parametrize("train", ["no", 0, None])
def test_check_model_refuses_a_train_flag_that_is_not_a_bool(train):
    # "no" is truthy: the kit trained where its caller asked it not to
    with pytest.raises(testing.ConformanceError, match="train must be True or False"):
        testing.check_model("mlp", train=train)
