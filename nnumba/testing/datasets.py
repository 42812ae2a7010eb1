"""The data set kit: a loader as ``nnumba train --dataset`` calls it
(:mod:`nnumba.testing`)."""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from .layers import ConformanceError


def check_dataset(loader, root=None):
    """A data set loader: called as nnumba calls it, ``loader(root=root,
    download=False)`` (``root``, a folder holding the data set's files, as ``nnumba
    train --data-dir`` gives it; None, the loader's default place), it returns a
    Dataset as documented (``nnumba.data.check_dataset``: float32 inputs, int class
    numbers in range, one per-sample shape, finite), the same arrays at a second call
    (deterministic); it warns where the loader ignores ``root`` (a folder that does
    not exist gives data).  What the loader raises (a missing file) is a
    ConformanceError naming it, chained to the loader's exception."""
    from ..data.check import DatasetError, check_dataset
    if not callable(loader):
        raise ConformanceError(f"check_dataset takes the loader, a function called as "
                               f"loader(root=None, download=False), got {loader!r:.80}")
    who = f"data set loader {getattr(loader, '__name__', repr(loader))}"
    call = f"loader(root={None if root is None else str(root)!r}, download=False)"
    try:
        first, second = (check_dataset(loader(root=root, download=False), who) for _ in "12")
    except DatasetError as exc:
        raise ConformanceError(str(exc)) from None
    except TypeError as exc:  # a loader that does not take what nnumba passes
        raise ConformanceError(f"{who}: {call}, as nnumba calls it, raised TypeError: "
                               f"{exc}") from None
    except Exception as exc:  # noqa: BLE001 - the loader's own (a missing file): whose, where
        hint = "; pass check_dataset(loader, root=FOLDER) holding its files" \
            if root is None and isinstance(exc, OSError) else ""
        raise ConformanceError(f"{who}: {call} raised {type(exc).__name__}: {exc}"
                               f"{hint}") from exc
    for field in ("x_train", "y_train", "x_test", "y_test"):
        if not np.array_equal(getattr(first, field), getattr(second, field)):
            raise ConformanceError(f"{who}: {field} differs between two calls; draw from a "
                                   f"fixed seed (np.random.default_rng(0))")
    counts = np.bincount(first.y_train, minlength=len(first.classes))
    missing = [c for c, k in zip(first.classes, counts) if k == 0]
    if missing:  # a model trained on it never learns them, and no error says why
        warnings.warn(f"{who}: no training sample of class{'es' * (len(missing) > 1)} "
                      f"{', '.join(repr(c)[:40] for c in missing[:5])}", stacklevel=2)
    nowhere = Path(tempfile.gettempdir()) / "nnumba-kit-no-such-folder"
    try:
        loader(root=str(nowhere), download=False)
    except Exception:  # noqa: BLE001 - refused (a generated set) or not found there: honoured
        return first
    warnings.warn(f"{who}: loader(root={str(nowhere)!r}), a folder that does not exist, "
                  f"returned data: --data-dir is ignored; read the files in root, or raise a "
                  f"ValueError where the data set takes no folder", stacklevel=2)
    return first
