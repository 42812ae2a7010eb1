"""A user's own data files (nnumba.data.load_arrays): what is read equals what was
written, the stratified split has the sizes its definition gives, and every bad
file is refused with a DataFileError that names the file."""
import csv
import pickle
from pathlib import Path

import numpy as np
import pytest

from nnumba.data import DataFileError, load_arrays, stratified_split
from nnumba.errors import LabelError, SpecError


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _csv(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_npz_with_its_own_test_set_reads_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    x, xt = rng.normal(size=(30, 2, 3)), rng.normal(size=(10, 2, 3))
    y, yt = rng.integers(0, 4, 30), rng.integers(0, 3, 10)
    y[:4] = np.arange(4)  # every class in training
    data = load_arrays(_npz(tmp_path / "a.npz", x_train=x, y_train=y, x_test=xt, y_test=yt))
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.x_train, x.astype(np.float32))
    np.testing.assert_array_equal(data.x_test, xt.astype(np.float32))
    np.testing.assert_array_equal(data.y_train, y)
    np.testing.assert_array_equal(data.y_test, yt)
    assert data.classes == ["0", "1", "2", "3"] and data.name == "a"
    assert "the file's own test set" in data.description


def test_npz_without_test_set_is_split_stratified_and_seeded(tmp_path):
    n_per_class = {0: 50, 1: 20, 2: 7}
    y = np.repeat(list(n_per_class), list(n_per_class.values()))
    x = np.arange(len(y), dtype=np.float64)[:, None] * [1.0, -1.0]  # row i is (i, -i)
    path = _npz(tmp_path / "b.npz", x_train=x, y_train=y)
    data = load_arrays(path, test_fraction=0.3, seed=1)
    # Of each class round(0.3 * n) test: 15, 6, 2; the rest train; every row once.
    for c, n in n_per_class.items():
        assert (data.y_test == c).sum() == {50: 15, 20: 6, 7: 2}[n]
        assert (data.y_train == c).sum() == n - {50: 15, 20: 6, 7: 2}[n]
    ids = np.concatenate([data.x_train[:, 0], data.x_test[:, 0]]).astype(int)
    assert sorted(ids) == list(range(len(y)))
    np.testing.assert_array_equal(y[data.x_train[:, 0].astype(int)], data.y_train)
    again = load_arrays(path, test_fraction=0.3, seed=1)
    other = load_arrays(path, test_fraction=0.3, seed=2)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    assert not np.array_equal(other.x_test, data.x_test)
    default = load_arrays(path)
    assert len(default.x_test) == 10 + 4 + 1 and "0.2" in default.description


def test_split_keeps_one_sample_of_a_class_for_training():
    train, test = stratified_split(np.array([0, 0, 0, 0, 1]), 0.5)
    assert list(test) != [] and 4 in train  # class 1's only sample trains
    with pytest.raises(DataFileError, match="no test samples"):
        stratified_split(np.array([0, 1, 2]), 0.2)


@pytest.mark.parametrize("labels", [np.zeros((4, 2)), np.zeros((4, 1), int), np.array(1),
                                    np.array([0.0, 1.0, 0.0, 1.0]), np.array(["a", "b"]),
                                    np.array([], int), [[0, 1], [1, 0]], None])
def test_split_refuses_labels_that_are_not_1d_class_numbers(labels):
    """A (4, 2) array used to give test indices [2, 3, 4, 6] for 4 samples."""
    with pytest.raises(LabelError, match=r"the data: stratified_split needs labels as a "
                                         r"non-empty 1-D array of integer class numbers"):
        stratified_split(labels, 0.5)


def test_split_of_a_list_is_the_split_of_its_array():
    """Per class, round(fraction * count) test samples, the others training."""
    y = [0, 1, 1, 0, 2, 2, 2, 2, 0, 1]
    train, test = stratified_split(y, 0.5, seed=3)
    again = stratified_split(np.array(y, np.int32), 0.5, seed=3)
    np.testing.assert_array_equal(train, again[0])
    np.testing.assert_array_equal(test, again[1])
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(10))
    assert np.bincount(np.array(y)[test]).tolist() == [2, 2, 2]  # round(0.5 * 3) = 2


@pytest.mark.parametrize("column", [1.5, 1.0, True, False, [1], None.__class__])
def test_label_column_must_be_a_name_or_an_integer(tmp_path, column):
    """int(1.5) and int(True) used to pick column 1 without a word."""
    path = _csv(tmp_path / "t.csv", [[0.5, 1, 0], [1.5, 0, 1]] * 5)
    with pytest.raises(SpecError, match=r"load_arrays: label_column must be a column name "
                                        r"\(str\) or a 0-based index"):
        load_arrays(path, label_column=column)


def test_label_column_as_a_numpy_integer_or_a_digit_string(tmp_path):
    rows = [[0.5, i % 2, 7 + i % 3] for i in range(12)]
    path = _csv(tmp_path / "t.csv", rows)
    by_int = load_arrays(path, label_column=np.int64(1), test_fraction=0.5)
    by_text = load_arrays(path, label_column="1", test_fraction=0.5)
    np.testing.assert_array_equal(by_int.y_train, by_text.y_train)
    x = np.array(rows, np.float32)[:, [0, 2]]
    np.testing.assert_array_equal(np.sort(np.concatenate([by_int.x_train, by_int.x_test]),
                                          axis=0), np.sort(x, axis=0))


@pytest.mark.parametrize("path", [None, 3, ["a.npz"], b"a.npz"])
def test_a_path_that_is_not_one_is_named(path):
    with pytest.raises(DataFileError, match=r"load_arrays: a data file is a path, got "):
        load_arrays(path)


def test_string_labels_become_sorted_class_numbers(tmp_path):
    y = np.array(["cat", "dog", "ant", "dog", "cat", "ant"] * 3)
    data = load_arrays(_npz(tmp_path / "s.npz", x_train=np.ones((18, 2)), y_train=y,
                            x_test=np.ones((2, 2)), y_test=np.array(["dog", "ant"])))
    assert data.classes == ["ant", "cat", "dog"]
    np.testing.assert_array_equal(np.array(data.classes)[data.y_train], y)
    assert data.y_test.tolist() == [2, 0]


def test_csv_with_header_and_named_label_column(tmp_path):
    rows = [["species", "a", "b"]] + [[f"k{i % 3}", i, 2.5 * i] for i in range(30)]
    path = _csv(tmp_path / "t.csv", rows)
    data = load_arrays(path, label_column="species", test_fraction=0.2)
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    order = np.argsort(x[:, 0])
    np.testing.assert_array_equal(x[order], [[i, 2.5 * i] for i in range(30)])
    assert [data.classes[c] for c in y[order]] == [f"k{i % 3}" for i in range(30)]
    by_index = load_arrays(path, label_column=0, test_fraction=0.2)
    np.testing.assert_array_equal(by_index.x_test, data.x_test)


def test_csv_without_header_takes_the_last_column_as_class_numbers(tmp_path):
    rows = [[i, -i, i % 2] for i in range(20)]
    data = load_arrays(_csv(tmp_path / "n.csv", rows))
    assert data.classes == ["0", "1"] and len(data.x_train) + len(data.x_test) == 20
    assert all((row[0] % 2) == label for row, label in zip(data.x_train, data.y_train))


def _bad_files(tmp):
    """(file, label_column, a fragment of the expected message)."""
    ones, labels = np.ones((6, 2)), np.array([0, 1, 0, 1, 0, 1])
    yield _npz(tmp / "nan.npz", x_train=np.array([[1, np.nan]] * 6), y_train=labels), \
        None, "NaN or infinite"
    yield _npz(tmp / "inf.npz", x_train=np.full((6, 2), np.inf), y_train=labels), \
        None, "NaN or infinite"
    yield _npz(tmp / "obj.npz", x_train=np.array([[1, "a"]] * 6, dtype=object),
               y_train=labels), None, "without pickle"
    yield _npz(tmp / "typo.npz", X_train=ones, y_train=labels), None, "unknown arrays X_train"
    yield _npz(tmp / "half.npz", x_train=ones, y_train=labels, x_test=ones), None, \
        "x_test and y_test come together"
    yield _npz(tmp / "neg.npz", x_train=ones, y_train=labels - 1), None, "class numbers"
    yield _npz(tmp / "years.npz", x_train=ones, y_train=labels + 2019), None, \
        "only 2 of those 2021 class numbers occur"
    yield _npz(tmp / "frac.npz", x_train=ones, y_train=labels / 2), None, "non-integer"
    yield _npz(tmp / "onehot.npz", x_train=ones, y_train=np.eye(6)), None, "one-hot"
    yield _npz(tmp / "count.npz", x_train=ones, y_train=labels[:5]), None, "5 labels for 6"
    yield _npz(tmp / "flat.npz", x_train=np.ones(6), y_train=labels), None, "one row per sample"
    yield _npz(tmp / "complex.npz", x_train=ones * 1j, y_train=labels), None, "complex"
    yield _npz(tmp / "empty.npz", x_train=np.ones((0, 2)), y_train=labels[:0]), None, "empty"
    yield _npz(tmp / "huge.npz", x_train=ones * 1e300, y_train=labels), None, "float32"
    yield _npz(tmp / "shape.npz", x_train=ones, y_train=labels, x_test=np.ones((2, 3)),
               y_test=labels[:2]), None, "x_test's samples have shape (3,)"
    yield _npz(tmp / "unseen.npz", x_train=ones, y_train=labels, x_test=ones[:1],
               y_test=np.array([5])), None, "label(s) 5 that y_train never has"
    (tmp / "junk.npz").write_bytes(b"not a zip")
    yield tmp / "junk.npz", None, "not an .npz archive"
    np.save(tmp / "one.npy", ones)
    (tmp / "one.npz").write_bytes((tmp / "one.npy").read_bytes())
    yield tmp / "one.npz", None, "a single .npy array"
    yield _npz(tmp / "col.npz", x_train=ones, y_train=labels), 0, "a label column is for CSV"
    yield _csv(tmp / "text.csv", [["a", "y"], ["1", "0"], ["x", "1"]]), None, \
        "line 3, column 'a' holds 'x', not a number"
    yield _csv(tmp / "hole.csv", [["1", "", "0"], ["1", "2", "1"]]), None, "line 1, column 1"
    yield _csv(tmp / "nan.csv", [["a", "y"], ["nan", "0"], ["1", "1"]]), None, \
        "not a finite float32"
    yield _csv(tmp / "ragged.csv", [["1", "2", "0"], ["1", "1"]]), None, "line 2 has 2 fields"
    yield _csv(tmp / "nolabel.csv", [["1", "2", "0"], ["1", "2", ""]]), None, "has no label"
    yield _csv(tmp / "name.csv", [["a", "y"], ["1", "0"]]), "z", "no column named 'z'"
    yield _csv(tmp / "range.csv", [["1", "0"], ["2", "1"]]), 5, "out of range"
    yield _csv(tmp / "onecol.csv", [["0"], ["1"]]), None, "needs feature columns"
    yield _csv(tmp / "blank.csv", []), None, "holds no rows"
    yield _csv(tmp / "header.csv", [["a", "y"]]), None, "no data rows"
    (tmp / "latin.csv").write_bytes(b"\xe9t\xe9,1\n")
    yield tmp / "latin.csv", None, "not UTF-8"
    (tmp / "data.txt").write_text("1,2\n")
    yield tmp / "data.txt", None, "unknown data file type '.txt'"


def test_bad_files_get_one_clear_error_naming_the_file(tmp_path):
    for path, column, fragment in _bad_files(tmp_path):
        with pytest.raises(DataFileError) as caught:
            load_arrays(path, label_column=column)
        message = str(caught.value)
        assert message.startswith(str(path)) and "\n" not in message, message
        assert fragment in message, (path.name, message)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_arrays(tmp_path / "nowhere.npz")


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    (tmp_path / "evil.npz").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(DataFileError, match="not an .npz archive"):
        load_arrays(tmp_path / "evil.npz")
    assert not marker.exists()


@pytest.mark.parametrize("labels", [np.array([0, 1, 1e300, 0]),
                                    np.array([0, 1, 2**63, 0], np.uint64)])
def test_labels_past_int64_are_named_not_wrapped(tmp_path, labels):
    """The int64 cast used to wrap 1e300 to -9223372036854775808 in the message."""
    path = _npz(tmp_path / "big.npz", x_train=np.ones((4, 2), np.float32), y_train=labels)
    with pytest.raises(DataFileError, match="far too large for a class number"):
        load_arrays(path)


def test_a_folder_or_device_is_not_called_missing(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    for path in (tmp_path / "dir.npz", Path("/dev/null")):
        with pytest.raises(DataFileError, match="is not a regular file"):
            load_arrays(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_arrays(tmp_path / "missing.npz")
