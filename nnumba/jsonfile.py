"""Read JSON from users' files with one clear error that names the file (and write a
layer's configuration as JSON values, :func:`jsonable`).

``json`` fails in several ways on bad input: JSONDecodeError (and ValueError for
an integer of more than 4,300 digits), RecursionError for nesting thousands deep,
UnicodeDecodeError for bytes that are not UTF-8, OSError for a file that cannot
be read. Every one becomes a :class:`~nnumba.errors.JSONFileError` here, and so
does nesting deeper than ``MAX_DEPTH``, which json reads but which would make
whatever walks or prints the value later hit the recursion limit.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .errors import DuplicateKeyError, JSONFileError

#: deeper than any spec or labels file needs, far below Python's recursion limit
MAX_DEPTH = 100


def read_json(path: str | os.PathLike, what: str = "JSON file"):
    """The JSON value in the file at ``path``; ``what`` ("model spec", ...) starts
    the message of the JSONFileError raised when the file cannot give one."""
    return parse_json(read_text(path, what, JSONFileError), f"{what} {path}")


#: the largest spec or labels file read (a spec of 20,000 layers is about 2 MB)
MAX_TEXT_BYTES = 64 << 20


def read_text(path, what: str, error=JSONFileError) -> str:
    """The UTF-8 text of the file at ``path`` (without a byte-order mark, as Windows
    editors write), or ``error`` naming ``what`` and the file."""
    from .paths import regular_file, user_path  # paths imports nothing of ours but the errors
    path = regular_file(user_path(path, what, error), what, error)
    if path.is_file() and path.stat().st_size > MAX_TEXT_BYTES:
        raise error(f"{what} {path}: {path.stat().st_size:,} bytes, more than such a file "
                    f"holds (at most {MAX_TEXT_BYTES:,})")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path}: not UTF-8 text (byte {exc.start} is "
                    f"{exc.object[exc.start:exc.start + 1]!r})") from None
    except OSError as exc:
        raise error(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None


def parse_json(text: str, source: str):
    """The JSON value in ``text``; ``source`` names where the text came from in the
    JSONFileError raised when it is not JSON."""
    if not text.strip():
        raise JSONFileError(f"{source}: empty, a JSON value was expected")
    try:
        value = loads(text)
    except DuplicateKeyError as exc:  # json keeps the last silently: a spec edited by hand
        raise DuplicateKeyError(f"{source}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise JSONFileError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} "
                            f"column {exc.colno})") from None
    except RecursionError:
        raise JSONFileError(f"{source}: JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # an integer with too many digits: Python's advice
        # (sys.set_int_max_str_digits) is not the user's to act on
        raise JSONFileError(f"{source}: not usable JSON ({str(exc).split(';')[0]})") from None
    if _depth(value) > MAX_DEPTH:
        raise JSONFileError(f"{source}: JSON nested deeper than {MAX_DEPTH} levels")
    return value


def loads(text: str):
    """json.loads, refusing an object that names a key twice (DuplicateKeyError)."""
    return json.loads(text, object_pairs_hook=_once)


def _once(pairs) -> dict:
    found = dict(pairs)
    if len(found) < len(pairs):
        seen = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise DuplicateKeyError(f"the key {key!r:.80} appears twice in one object; keep one")
    return found


def _depth(value) -> int:
    """How deeply lists and dicts nest in ``value`` ([] is 1), found without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in
                         (item.values() if isinstance(item, dict) else item))
    return deepest


def jsonable(value):
    """A layer's configuration value as a JSON value: dtypes by name, tuples as lists,
    numpy scalars as Python's."""
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):  # np.bool_, np.int64, np.float32, ...: plain Python
        return value.item()
    return value
