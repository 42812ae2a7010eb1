"""A user's own data: NumPy arrays in an .npz file, or a CSV table with a label column.

``load_arrays(path)`` returns a :class:`Dataset` like the built-in loaders:
inputs as float32, labels as int64 class numbers 0..K-1, with a seeded,
stratified test split when the file has no test set of its own. Everything is
checked before training starts, and every error is one
:class:`DataFileError` naming the file: shapes, dtypes, NaN or infinity, labels
(class numbers 0, 1, ... or class names; a test label must be a training
label). Files are never unpickled: ``np.load(..., allow_pickle=False)``.
"""
from __future__ import annotations

import math
import os
import zipfile

import numpy as np

from ..errors import LabelError, MissingFileError, SpecError
from ..layers.validation import encodable, integer, non_finite, show
from ..paths import user_path
from .csv_table import read_csv
from .datasets import Dataset
from .file_errors import EXACT_INT, DataFileError, too_large_integers

__all__ = ["DataFileError", "load_arrays", "stratified_split", "DEFAULT_TEST_FRACTION"]

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
DEFAULT_TEST_FRACTION = 0.2


def load_arrays(path, *, label_column: str | int | None = None,
                test_fraction: float | None = None, seed: int = 0) -> Dataset:
    """The data set in ``path``: an ``.npz`` holding ``x_train, y_train[, x_test,
    y_test]``, or a ``.csv`` table whose ``label_column`` (a header name or a
    0-based index, negative from the end; default the last column) holds the labels.

    Without a test set in the file, a stratified share ``test_fraction``
    (default 0.2) of each class is drawn with ``seed`` for testing."""
    seed = integer("load_arrays", "seed", seed, 0, None)  # numpy's own error names nothing
    if not isinstance(path, (str, os.PathLike)):
        raise DataFileError(f"load_arrays: a data file is a path, got {show(path)}")
    path = user_path(path, "data file", DataFileError)  # a Path
    # int(1.5) and int(True) would quietly pick column 1
    if label_column is not None and not isinstance(label_column, str) and (
            isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer))):
        raise SpecError(f"load_arrays: label_column must be a column name (str) or a 0-based "
                        f"index (int, negative from the end), got {show(label_column)} "
                        f"({type(label_column).__name__})")
    try:
        is_file, exists = path.is_file(), path.exists()
    except OSError as exc:  # a name too long, a folder it may not search
        raise DataFileError(f"data file {str(path)[:200]}: {exc.strerror or exc}") from None
    if not is_file:
        if exists:  # a folder, a device: "does not exist" would mislead
            raise DataFileError(f"data file {path} is not a regular file; give an .npz or "
                                ".csv file")
        raise MissingFileError(f"data file {path} does not exist{_dataset_hint(path)}")
    kind = path.suffix.lower()
    if kind == ".npz":
        if label_column is not None:
            raise DataFileError(f"{path}: a label column is for CSV files; an .npz "
                                "holds its labels in y_train (and y_test)")
        x, y, x_test, y_test = _read_npz(path)
    elif kind == ".csv":
        x, y, what = read_csv(path, label_column)
        if y.dtype.kind == "f":  # class numbers, else class names
            y = _labels(path, what, y, len(y))
        x_test = y_test = None
    else:
        raise DataFileError(f"{path}: unknown data file type {kind or '(no suffix)'!r}; "
                            "nnumba reads .npz (x_train, y_train[, x_test, y_test]) and .csv")
    y, y_test, classes = _class_numbers(path, y, y_test)
    if x_test is not None:
        if test_fraction is not None:
            raise DataFileError(f"{path} has its own test set (x_test, y_test): "
                                "drop the test fraction")
        split = "the file's own test set"
    else:
        fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
        train, test = stratified_split(y, fraction, seed, source=path)
        x, y, x_test, y_test = x[train], y[train], x[test], y[test]
        split = (f"a stratified {fraction:g} test split with seed {seed}"
                 + (" (the default fraction)" if test_fraction is None else ""))
    return Dataset(path.stem, x, y, x_test, y_test, classes,
                   f"{path}: samples of shape {x.shape[1:]}, {len(classes)} classes; "
                   f"test set: {split}.")


def stratified_split(y: np.ndarray, test_fraction: float, seed: int = 0, *,
                     source="the data") -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays, in order: of each class, round(fraction * count)
    samples drawn with ``seed`` test, and at least one stays for training."""
    seed = integer("stratified_split", "seed", seed, 0, None)
    y = np.asarray(y)
    # np.unique of a 2-D array would split its values, not its rows: indices past the end
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) == 0:
        raise LabelError(f"{source}: stratified_split needs labels as a non-empty 1-D array "
                         f"of integer class numbers, got {y.dtype} of shape {y.shape}")
    if isinstance(test_fraction, bool) or not isinstance(
            test_fraction, (int, float, np.integer, np.floating)) or not 0 < test_fraction < 1:
        raise DataFileError(f"{source}: the test fraction must lie strictly between 0 "
                            f"and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = min(math.floor(test_fraction * len(members) + 0.5), len(members) - 1)
        test.append(rng.permutation(members)[:k])
    test = np.sort(np.concatenate(test))
    if len(test) == 0:
        raise DataFileError(f"{source}: a test fraction of {test_fraction} of {len(y)} "
                            "samples leaves no test samples; raise it or add data")
    return np.setdiff1d(np.arange(len(y)), test), test


# ---- .npz ---------------------------------------------------------------------------

def _read_npz(path):
    from ..npz import check_npz_memory, npz_headers
    try:
        check_npz_memory(path, npz_headers(path))
    except ValueError as exc:  # a member np.load would read whole, whatever its size
        raise DataFileError(f"{path}: not a readable .npz archive ({exc})") from None
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError:  # neither zip nor .npy: numpy's last resort would be pickle
        raise DataFileError(f"{path}: not an .npz archive (a zip of .npy arrays, as "
                            "np.savez writes)") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataFileError(f"{path}: a single .npy array, not an .npz archive of "
                            "x_train, y_train[, x_test, y_test]")
    with archive:
        names = set(archive.files)
        unknown = sorted(names - set(NPZ_KEYS))
        missing = [k for k in NPZ_KEYS[:2] if k not in names]
        if unknown or missing:
            raise DataFileError(
                f"{path}: " + "; ".join(filter(None, [
                    missing and f"missing {', '.join(missing)}",
                    unknown and f"unknown arrays {', '.join(unknown)}"]))
                + "; an .npz for nnumba holds x_train, y_train and optionally x_test, y_test")
        if ("x_test" in names) != ("y_test" in names):
            raise DataFileError(f"{path}: x_test and y_test come together; it has only "
                                f"{'x_test' if 'x_test' in names else 'y_test'}")
        arrays = {}
        for key in (k for k in NPZ_KEYS if k in names):
            try:
                arrays[key] = archive[key]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
                if isinstance(exc, ValueError) and "pickle" in str(exc):  # object arrays
                    raise DataFileError(f"{path}: {key} cannot be read without pickle, which "
                                        f"nnumba never uses: save numeric arrays ({exc})") from None
                # cut short, or encrypted (zipfile's RuntimeError)
                raise DataFileError(f"{path}: {key} is damaged ({exc})") from None
            if not isinstance(arrays[key], np.ndarray):  # numpy hands a non-.npy member as bytes
                raise DataFileError(f"{path}: {key} is not a numpy array (.npy data)")
    x = _inputs(path, "x_train", arrays["x_train"])
    y = _labels(path, "y_train", arrays["y_train"], len(x))
    if "x_test" not in arrays:
        return x, y, None, None
    x_test = _inputs(path, "x_test", arrays["x_test"])
    if x_test.shape[1:] != x.shape[1:]:
        raise DataFileError(f"{path}: x_test's samples have shape {x_test.shape[1:]}, "
                            f"x_train's {x.shape[1:]}")
    return x, y, x_test, _labels(path, "y_test", arrays["y_test"], len(x_test))


def _inputs(path, name, x) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: {name} must hold numbers (bool, int or float), "
                            f"got dtype {x.dtype}")
    if x.ndim < 2:
        raise DataFileError(f"{path}: {name} must hold one row per sample (2 or more "
                            f"dimensions), got shape {x.shape}")
    if len(x) == 0 or x[0].size == 0:
        raise DataFileError(f"{path}: {name} is empty (shape {x.shape})")
    _check_finite(path, name, x)
    if x.dtype.kind in "iu" and x.dtype.itemsize > 2 and \
            (int(x.max()) > EXACT_INT or int(x.min()) < -EXACT_INT):
        raise DataFileError(too_large_integers(path, name,
                                               f"{max(int(x.max()), -int(x.min())):,}"))
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    if x.dtype.kind == "f" and not np.isfinite(x32).all():
        raise DataFileError(f"{path}: {name} holds values beyond float32's range "
                            "(about ±3.4e38)")
    return x32


def _check_finite(path, name, x):
    """NaN or infinity: say how many and in which sample the first one is."""
    found = non_finite(x)
    if found:
        raise DataFileError(f"{path}: {name} holds {found}")


def _labels(path, name, y, n) -> np.ndarray:
    """Labels as a flat array: integers (bools and whole floats become int64) or strings."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        hint = ": one-hot labels? save y.argmax(axis=1)" if y.ndim == 2 else ""
        raise DataFileError(f"{path}: {name} must hold one label per sample, shape (N,), "
                            f"got {y.shape}{hint}")
    if len(y) != n:
        raise DataFileError(f"{path}: {name} has {len(y)} labels for {n} samples")
    if y.dtype.kind in "SU":  # names; bytes are ASCII names (numpy decodes them as ASCII)
        try:
            return _names(path, name, y.astype(str))
        except UnicodeDecodeError:  # (bytes only)
            raise DataFileError(f"{path}: {name} holds byte strings that are not ASCII; "
                                f"save the class names as str (dtype U)") from None
    if y.dtype.kind == "f":
        _check_finite(path, name, y)
        if (y != np.round(y)).any():
            raise DataFileError(f"{path}: {name} holds non-integer labels such as "
                                f"{y[y != np.round(y)][0]:g}; labels are class numbers "
                                "0, 1, ... or class names (nnumba train classifies)")
    elif y.dtype.kind not in "biu":
        raise DataFileError(f"{path}: {name} must hold class numbers or names, got dtype "
                            f"{y.dtype}")
    if y.dtype.kind in "fu" and len(y) and float(np.abs(y).max()) >= 2.0**63:
        # past int64 the cast wraps: 1e300 was reported as -9223372036854775808
        raise DataFileError(f"{path}: {name} holds {float(np.abs(y).max()):g}, far too large "
                            "for a class number; labels are class numbers 0, 1, ... or names")
    return y.astype(np.int64)


def _names(path, name, y) -> np.ndarray:
    """Class names as they are, refused where one is empty or blank: a saved model's
    classes must be names (io.save would refuse it after the whole run)."""
    blank = np.flatnonzero(np.char.strip(y) == "")
    if len(blank):
        raise DataFileError(f"{path}: {name} holds an empty class name "
                            f"({str(y[blank[0]])!r}, sample {blank[0]}); name every class")
    bad = [text for text in np.unique(y).tolist() if not encodable(text)]
    if bad:
        raise DataFileError(f"{path}: {name} holds a class name no text can hold (a lone "
                            f"surrogate): {bad[0]!r}")
    return y


def _class_numbers(path, y, y_test):
    """(y, y_test, class names): class numbers stay as they are (0..max); class
    names are numbered in sorted order. A test label must be a training label."""
    names = y.dtype.kind == "U"
    if len(np.unique(y)) < 2:  # a classifier of one class learns nothing; its accuracy is None
        raise DataFileError(f"{path}: y_train holds one class only ({_few(np.unique(y))}); "
                            "a classifier needs two classes or more")
    if y_test is not None and (y_test.dtype.kind == "U") != names:
        raise DataFileError(f"{path}: y_train holds {'names' if names else 'numbers'} but "
                            f"y_test {'numbers' if names else 'names'}")
    if y_test is not None:
        unseen = np.setdiff1d(y_test, y)
        if len(unseen):
            raise DataFileError(f"{path}: y_test holds label(s) {_few(unseen)} that y_train "
                                "never has; the model could not learn them")
    if names:
        classes = np.unique(y)
        return (np.searchsorted(classes, y), None if y_test is None else
                np.searchsorted(classes, y_test), classes.tolist())
    if y.min() < 0:
        raise DataFileError(f"{path}: labels must be class numbers 0, 1, 2, ... (or class "
                            f"names); y_train holds {y.min()}")
    count, seen = int(y.max()) + 1, len(np.unique(y))
    if count > 10 and seen < count / 2:  # ids or years, not class numbers: one output each
        raise DataFileError(f"{path}: y_train's labels run up to {count - 1} but only {seen} "
                            f"of those {count} class numbers occur; number the classes "
                            "0, 1, 2, ... or save them as names")
    return y, y_test, [str(c) for c in range(count)]


def _few(values, n=5) -> str:
    shown = ", ".join(map(str, values[:n].tolist()))
    return shown + (f" (and {len(values) - n} more)" if len(values) > n else "")


def _dataset_hint(path) -> str:
    """Where a missing data file's name is a registered data set's: how to load that."""
    from ..registry import get_registry  # the registry imports the data sets: import late
    name = str(path)
    try:
        get_registry().entry("dataset", name)
    except Exception:  # noqa: BLE001 - not a data set's name either: no hint
        return ""
    return (f"; {name!r} is a data set: load it with --dataset {name} (nnumba train) or "
            f"nnumba.load_dataset({name!r})")
