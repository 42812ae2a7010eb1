"""What the estimators take as features: numbers only."""
from __future__ import annotations

import datetime
import warnings

import numpy as np

from .errors import DTypeError

_NOT_NUMBERS = {"U": "str", "S": "bytes", "M": "datetime64", "m": "timedelta64",
                "V": "record"}
_NOT_NUMBER_TYPES = (str, bytes, datetime.date, datetime.timedelta, np.datetime64,
                     np.timedelta64)


def check_numbers(owner: str, X):
    """DTypeError for features that are not numbers: scikit-learn's check_array with
    a float dtype would parse "0.5" as 0.5 and turn a missing date (NaT) into
    -9.2e18, which a model would train on (``nnumba train --data`` refuses both).
    Anything else (ragged lists, a dict in an object array, sparse input) is left to
    check_array's own errors."""
    array, dtypes = X, getattr(X, "dtypes", None)
    if dtypes is not None and not isinstance(dtypes, np.dtype):  # a data frame's columns
        kinds = {getattr(d, "kind", "O") for d in dtypes}  # (pandas' own dtypes have one)
        if "O" in kinds:  # strings, dates with a time zone, categories: look at them
            array = np.asarray(X, dtype=object)
    else:
        if not isinstance(getattr(X, "dtype", None), np.dtype):
            with warnings.catch_warnings():  # a ragged list: check_array says it
                warnings.simplefilter("ignore")
                try:
                    array = np.asarray(X)
                except (ValueError, TypeError):
                    return
        kinds = {array.dtype.kind}
    if isinstance(array, np.ndarray) and array.dtype.kind == "O":
        bad = next((v for v in array.flat if isinstance(v, _NOT_NUMBER_TYPES)), None)
        if bad is not None:
            raise DTypeError(f"{owner}: X must hold numbers, got an object array "
                             f"holding {type(bad).__name__} {bad!r:.40}")
    names = sorted(_NOT_NUMBERS[k] for k in kinds if k in _NOT_NUMBERS)
    if names:
        raise DTypeError(f"{owner}: X must hold numbers (bool, int or float), got "
                         f"{', '.join(names)} values; encode them as numbers first")
