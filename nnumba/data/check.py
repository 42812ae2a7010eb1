"""What a data set loader returns, checked against the Dataset contract.

A plugin's loader is called through :func:`nnumba.data.load_dataset` (as ``nnumba
train --dataset`` calls it), so a loader that returns lists,
float64 inputs, string labels or mismatched shapes is one line naming the data
set and its plugin, not a failure deep inside training.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..errors import DatasetError, NnumbaError
from ..layers.validation import flag
from .datasets import Dataset


def load_dataset(name: str = "mnist-5k", root=None, download: bool = False) -> Dataset:
    """Load a data set by name: the built-ins or any a plugin registers, checked."""
    download = flag("load_dataset", "download", download)  # "no" is truthy: it would download
    from ..registry import get_registry  # the registry imports the data sets: import late
    entry = get_registry().entry("dataset", name)
    who = f"data set {name!r}" + ("" if entry.builtin else f" (plugin {entry.plugin!r})")
    try:
        data = entry.obj(root=root, download=download)
    except NnumbaError:
        raise  # named already (a file it cannot read)
    except (OSError, ValueError) as exc:  # the documented ways to refuse: a missing
        _say_whose(exc, who)              # file, a folder it cannot take
        raise
    except Exception as exc:  # a plugin's bug: say whose, not "please report it"
        error = DatasetError(f"{who}: its loader raised {type(exc).__name__}: {exc}")
        error.plugin = None if entry.builtin else entry.plugin  # status 1 (cli)
        raise error from exc
    try:
        return check_dataset(data, who)
    except DatasetError as error:  # arrays of the wrong kind: the loader's bug, not the
        if not error.in_values:    # user's (NaN may be in the files it read: theirs)
            error.plugin = None if entry.builtin else entry.plugin
        raise


def _say_whose(exc, who: str):
    """Put ``who`` before ``exc``'s message in place: its type, errno and filename stay
    (``except OSError`` still catches a failed download)."""
    if isinstance(exc, OSError) and exc.strerror:
        exc.strerror = f"{who}: {exc.strerror}"
    elif len(exc.args) == 1 and isinstance(exc.args[0], str) and who not in exc.args[0]:
        exc.args = (f"{who}: {exc.args[0]}",)


def check_dataset(data, who: str = "data set"):
    """``data`` if it is a Dataset as documented (float32 inputs ``(N, ...)`` of one
    per-sample shape, int class numbers ``(N,)`` in ``[0, len(classes))``, finite,
    neither split empty); else DatasetError saying what is wrong."""
    def fail(what, in_values=False):
        error = DatasetError(f"{who}: {what}")
        error.in_values = in_values
        raise error
    if not isinstance(data, Dataset):
        fail(f"the loader returned a {type(data).__name__}, not an nnumba.data.Dataset")
    if not isinstance(data.classes, (list, tuple)) or not data.classes or \
            not all(isinstance(c, str) for c in data.classes):
        fail(f"classes must be a list of class names (str), got {data.classes!r:.80}")
    twice = sorted(c for c, k in Counter(data.classes).items() if k > 1)
    if twice:  # a report by name would merge two classes
        fail(f"classes holds {', '.join(repr(c)[:40] for c in twice[:3])} more than once; "
             f"one name per class", in_values=True)
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        for field, a in ((f"x_{split}", x), (f"y_{split}", y)):
            if not isinstance(a, np.ndarray):
                fail(f"{field} is a {type(a).__name__}; return numpy arrays "
                     f"(np.asarray(..., np.float32) for inputs, np.int64 for labels)")
        if x.dtype != np.float32:
            fail(f"x_{split} is {x.dtype}; inputs are float32: x.astype(np.float32)")
        if x.ndim < 2 or len(x) == 0:
            fail(f"x_{split} has shape {x.shape}; inputs are (N, features) or "
                 f"(N, channels, height, width) with N > 0")
        if y.dtype.kind not in "iu":
            hint = (": number the classes 0, 1, ... and put the names in classes"
                    if y.dtype.kind in "USO" else ": y.astype(np.int64)")
            fail(f"y_{split} is {y.dtype}; labels are int64 class numbers{hint}")
        if y.shape != (len(x),):
            fail(f"y_{split} has shape {y.shape} for {len(x)} inputs; labels are (N,)")
        if y.min() < 0 or y.max() >= len(data.classes):
            fail(f"y_{split} holds class numbers from {y.min()} to {y.max()}, but classes "
                 f"has {len(data.classes)} names: labels lie in [0, {len(data.classes)})",
                 in_values=True)
        if not np.isfinite(x).all():
            fail(f"x_{split} holds NaN or infinity", in_values=True)
    if len(np.unique(data.y_train)) < 2:  # a classifier of one class learns nothing
        fail(f"y_train holds one class only (class {int(data.y_train[0])}); a classifier "
             f"needs two classes or more", in_values=True)
    if data.x_test.shape[1:] != data.x_train.shape[1:]:
        fail(f"x_test's samples have shape {data.x_test.shape[1:]}, x_train's "
             f"{data.x_train.shape[1:]}: one per-sample shape for both", in_values=True)
    return data
