"""fuzz47: hostile files and file-shaped inputs (weights, checkpoints, data files).

Each test fails on the current code (HEAD 1417e8e) and passes once its finding is fixed.
Run with NUMBA_NUM_THREADS=1."""
import os
import time
import warnings

import numpy as np
import pytest

import nnumba
from nnumba.layers import Linear, ReLU, Tanh
from nnumba.losses import CrossEntropy, MSE


def _data(n=30, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), np.arange(n) % 2


# ---- 1. resume takes another model's stored training (same parameter count) -------------

def test_resume_refuses_the_stored_training_of_a_model_of_other_shapes(tmp_path):
    """A's file stores a momentum buffer laid out for A's shapes (2x3, 2, 3x2, 3). Model B
    has 17 parameters too, in other shapes (3x2, 3, 2x3, 2): the buffer lands on the wrong
    weights. The file knows A's shapes (its headers): resume must refuse it, or at least warn."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    a = nnumba.Sequential(Linear(3, 2), Tanh(), Linear(2, 3), seed=0)
    ta = nnumba.SGDTrainer(a, MSE(), lr=0.1, momentum=0.9, batch_size=5, seed=0)
    ta.fit(x, rng.normal(size=(20, 3)).astype(np.float32), epochs=1)
    path = nnumba.save(a, tmp_path / "a.npz", training=ta)
    b = nnumba.Sequential(Linear(2, 3), Tanh(), Linear(3, 2), seed=0)
    assert b.flat_params.size == a.flat_params.size  # the only thing checked now
    tb = nnumba.SGDTrainer(b, MSE(), lr=0.1, momentum=0.9, batch_size=5, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tb.resume(nnumba.stored_training(path))
        except nnumba.NnumbaError:
            return  # refused: fixed
    assert caught, "another model's momentum buffer was taken silently"


# ---- 2. SGDTrainer's shuffle is neither stored nor compared on resume -------------------

def test_resume_with_another_shuffle_setting_is_warned_of_or_goes_on_as_one_run(tmp_path):
    x, y = _data()
    make = lambda: nnumba.Sequential(Linear(3, 4), ReLU(), Linear(4, 2), seed=0)  # noqa: E731
    ref = make()
    nnumba.SGDTrainer(ref, CrossEntropy(), lr=0.1, momentum=0.9, batch_size=4, seed=0,
                      shuffle=False).fit(x, y, epochs=2)
    a = make()
    ta = nnumba.SGDTrainer(a, CrossEntropy(), lr=0.1, momentum=0.9, batch_size=4, seed=0,
                           shuffle=False)
    ta.fit(x, y, epochs=1)
    path = nnumba.save(a, tmp_path / "sh.npz", training=ta)
    b = nnumba.load_model(path)
    tb = nnumba.SGDTrainer(b, CrossEntropy(), lr=0.1, momentum=0.9, batch_size=4, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tb.resume(nnumba.stored_training(path))
    tb.fit(x, y, epochs=1)
    same = all(np.array_equal(p.value, q.value) for (_, p), (_, q) in zip(ref.params(), b.params()))
    warned = any("shuffle" in str(w.message) for w in caught)
    assert same or warned, ("resume went on with shuffle=True after a shuffle=False run: "
                            "another batch order, no warning (lr or batch_size would warn)")


# ---- 3. a CSV header of numeric column names above class-name labels -------------------

def test_csv_header_of_numeric_names_is_not_taken_as_a_sample_silently(tmp_path):
    """It reads as a first sample alone in its class (review 40: a small headerless
    file's first sample can be that, so it is kept): a warning says how to name the
    header, and naming the label column reads the row as one."""
    rows = "".join(f"{i},{i * 2},{'a' if i % 2 else 'b'}\n" for i in range(10))
    path = tmp_path / "years.csv"
    path.write_text("2019,2020,class\n" + rows)
    from nnumba.data import load_arrays
    with pytest.warns(UserWarning, match="label_column='class'"):
        load_arrays(path)
    assert sorted(load_arrays(path, label_column="class").classes) == ["a", "b"]


# ---- 4. a label column name that the header holds twice -------------------------------

def test_csv_label_column_named_twice_in_the_header_is_refused(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("f,label,label\n" + "".join(f"{i},{i % 2},{(i + 1) % 2}\n" for i in range(10)))
    from nnumba.data import DataFileError, load_arrays
    with pytest.raises(DataFileError, match="label"):
        load_arrays(path, label_column="label")  # now: the first 'label', the second a feature


# ---- 5. save deletes a user's file whose name looks like an old temporary's ------------

@pytest.mark.parametrize("name", ["w.npz_backup1.tmp", ".w.npz.backup01.tmp"])
def test_save_leaves_a_users_file_that_is_no_weights_alone(tmp_path, name):
    own = tmp_path / name
    own.write_text("my notes, not nnumba's")
    old = time.time() - 3600
    os.utime(own, (old, old))
    nnumba.save(nnumba.Sequential(Linear(2, 3), seed=0), tmp_path / "w.npz")
    assert own.exists(), f"save deleted {name}, a file it never wrote (text, not a zip)"


# ---- 6. a data set folder that is a file: a bare NotADirectoryError ---------------------

@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_dataset_root_that_is_a_file_is_an_nnumba_error(tmp_path, dataset):
    from nnumba.data import load_dataset
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(nnumba.NnumbaError):
        load_dataset(dataset, root=str(f))
