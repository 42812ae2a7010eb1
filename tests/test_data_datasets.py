"""Data set loaders: the embedded split, folders of IDX files, dispatch by name."""

from pathlib import Path

import numpy as np
import pytest

from nnumba.data import datasets as ds
from nnumba.data import load_dataset, load_embedded_mnist, load_fashion_mnist, load_mnist, write_idx
from nnumba.data.idx import read_idx

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def embedded():
    return load_embedded_mnist()


def check_layout(d, n_train, n_test):
    assert d.x_train.shape == (n_train, 1, 28, 28) and d.x_test.shape == (n_test, 1, 28, 28)
    assert d.x_train.dtype == np.float32 and d.x_test.dtype == np.float32
    assert d.y_train.shape == (n_train,) and d.y_test.shape == (n_test,)
    assert d.y_train.dtype == np.int64 and d.y_test.dtype == np.int64
    for x in (d.x_train, d.x_test):
        assert 0.0 <= x.min() and x.max() <= 1.0
    for y in (d.y_train, d.y_test):
        assert 0 <= y.min() and y.max() < 10
    assert len(d.classes) == 10


def test_embedded_split_is_stratified_400_100(embedded):
    check_layout(embedded, 4000, 1000)
    assert embedded.name == "mnist-5k"
    assert np.bincount(embedded.y_train).tolist() == [400] * 10
    assert np.bincount(embedded.y_test).tolist() == [100] * 10
    assert embedded.x_train.max() == 1.0  # scaled by 255, not by something else
    assert "400" in embedded.description and "100" in embedded.description


def test_embedded_split_is_first_400_and_last_100_per_class_and_disjoint(embedded):
    raw = read_idx(ds.EMBEDDED_DIR / "images-idx3-ubyte.gz").reshape(5000, -1)
    labels = read_idx(ds.EMBEDDED_DIR / "labels-idx1-ubyte.gz")
    position = {raw[i].tobytes(): i for i in range(5000)}
    assert len(position) == 5000  # every image distinct, so positions are well defined
    train = [position[(x * 255).round().astype(np.uint8).tobytes()] for x in embedded.x_train.reshape(4000, -1)]
    test = [position[(x * 255).round().astype(np.uint8).tobytes()] for x in embedded.x_test.reshape(1000, -1)]
    assert not set(train) & set(test) and len(set(train) | set(test)) == 5000
    np.testing.assert_array_equal(labels[train], embedded.y_train)
    np.testing.assert_array_equal(labels[test], embedded.y_test)
    for c in range(10):
        in_class = np.flatnonzero(labels == c)
        assert sorted(i for i in train if labels[i] == c) == in_class[:400].tolist()
        assert sorted(i for i in test if labels[i] == c) == in_class[400:].tolist()


def test_embedded_is_deterministic_and_prefixes_are_balanced(embedded):
    again = load_embedded_mnist()
    np.testing.assert_array_equal(again.x_train, embedded.x_train)
    np.testing.assert_array_equal(again.y_test, embedded.y_test)
    assert embedded.y_train[:20].tolist() == list(range(10)) * 2
    small = embedded.subset(train=100, test=30)
    assert np.bincount(small.y_train).tolist() == [10] * 10 and len(small.x_test) == 30
    assert load_dataset().name == "mnist-5k"
    assert small.description.endswith("Subset: the first 100 train and the first 30 test.")
    only_train = embedded.subset(train=100)
    assert len(only_train.x_test) == len(embedded.x_test)
    assert only_train.description.endswith("Subset: the first 100 train.")


@pytest.mark.parametrize("description, said", [
    ("generated, 4 train / 2 test", "generated, 4 train / 2 test. Subset: all 4 train."),
    ("Made by hand.", "Made by hand. Subset: all 4 train."),
    ("", "Subset: all 4 train."),
])
def test_a_subset_larger_than_the_set_says_what_it_kept(description, said):
    """--train-size 1000 on a 4-sample set read "... 4 train / 2 test Subset: the first
    1000 train." (trial 46): it keeps all 4, and a full stop goes before "Subset"."""
    from nnumba.data import Dataset
    x = np.zeros((4, 2), np.float32)
    data = Dataset("tiny", x, np.array([0, 1, 0, 1]), x[:2], np.array([0, 1]), ["a", "b"],
                   description)
    assert data.subset(train=1000).description == said


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "10"])
def test_subset_refuses_a_size_that_is_not_a_positive_integer(embedded, bad):
    with pytest.raises(ValueError, match="subset: train must be an integer >= 1"):
        embedded.subset(train=bad)


@pytest.mark.parametrize("negative, positive, error, message", [
    (0.5, 1, "SpecError", r"binary: negative must be an integer >= 0, got 0.5"),
    ("0", 1, "SpecError", r"binary: negative must be an integer >= 0, got '0'"),
    (0, True, "SpecError", r"binary: positive must be an integer >= 0, got True"),
    (0, 1.0, "SpecError", r"binary: positive must be an integer >= 0, got 1.0"),
    (-1, 1, "SpecError", r"binary: negative must be an integer >= 0, got -1"),
    (0, 10, "LabelError", r"mnist-5k has classes 0..9, got 10"),
    (3, 3, "LabelError", r"the two classes must differ, got 3 twice"),
])
def test_binary_refuses_what_is_not_two_class_numbers(embedded, negative, positive, error,
                                                      message):
    """binary(0.5, 1) used to return class 1 alone, every label +1."""
    from nnumba import errors
    with pytest.raises(getattr(errors, error), match=message):
        embedded.binary(negative, positive)


@pytest.mark.parametrize("split", ["validation", None, ["train"]])
def test_binary_refuses_an_unknown_split(embedded, split):
    from nnumba.errors import SpecError
    with pytest.raises(SpecError, match=r"binary: split must be 'train' or 'test'"):
        embedded.binary(0, 1, split)


def test_binary_keeps_the_two_classes_as_minus_and_plus_one(embedded):
    x, y = embedded.binary(np.int64(3), 8, "test")
    keep = np.isin(embedded.y_test, [3, 8])
    np.testing.assert_array_equal(x, embedded.x_test[keep])
    np.testing.assert_array_equal(y, np.where(embedded.y_test[keep] == 8, 1, -1))
    assert sorted(np.unique(y).tolist()) == [-1, 1] and len(y) == 200


def synthetic_mnist(root, n_train=12, n_test=5, gz=True):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    suffix = ".gz" if gz else ""
    parts = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        parts[prefix] = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8))
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", parts[prefix][0])
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", parts[prefix][1])
    return parts


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_folder(tmp_path, gz):
    parts = synthetic_mnist(tmp_path, gz=gz)
    d = load_mnist(tmp_path)
    check_layout(d, 12, 5)
    np.testing.assert_array_equal(d.x_train[:, 0], parts["train"][0] / np.float32(255))
    np.testing.assert_array_equal(d.y_test, parts["t10k"][1])
    assert load_dataset("mnist", root=tmp_path).y_train.tolist() == parts["train"][1].tolist()


def test_missing_files_are_listed(tmp_path):
    synthetic_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="missing train-images-idx3-ubyte.*t10k-labels-idx1-ubyte") as info:
        load_mnist(tmp_path)
    assert "train-labels" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nope")


def test_mismatched_counts_and_bad_labels_are_rejected(tmp_path):
    synthetic_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="4 labels but 5 images"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 10], np.uint8))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 27), np.uint8))
    with pytest.raises(ValueError, match="t10k-images"):
        load_mnist(tmp_path)


def test_fashion_mnist_search_order(tmp_path, monkeypatch):
    synthetic_mnist(tmp_path / "env", n_train=3, n_test=2)
    monkeypatch.setenv("NNUMBA_FASHION_MNIST", str(tmp_path / "env"))
    d = load_fashion_mnist()
    check_layout(d, 3, 2)
    assert d.classes[0] == "T-shirt/top"
    monkeypatch.delenv("NNUMBA_FASHION_MNIST")
    monkeypatch.setattr(ds, "SYSTEM_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist()


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_full_size(monkeypatch):
    monkeypatch.delenv("NNUMBA_FASHION_MNIST", raising=False)
    d = load_dataset("fashion-mnist")
    check_layout(d, 60000, 10000)
    assert np.bincount(d.y_train).tolist() == [6000] * 10


def test_dispatch_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="Known datasets: fashion-mnist, mnist, mnist-5k"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="embedded"):
        load_dataset("mnist-5k", root=tmp_path)
    monkeypatch.setenv("NNUMBA_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="download=True"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="apt-get"):
        load_dataset("fashion-mnist", download=True)


def test_mnist_uses_the_cache_when_files_are_there(tmp_path, monkeypatch):
    monkeypatch.setenv("NNUMBA_CACHE", str(tmp_path))
    synthetic_mnist(tmp_path / "mnist")
    assert len(load_dataset("mnist").x_train) == 12
