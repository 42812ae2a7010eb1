"""A CSV table with a label column, as load_arrays reads it: a header or none, the
label column by name or index, every other column a finite float32 number."""
from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import numpy as np

from .file_errors import EXACT_INT, FLOAT32_MAX, DataFileError, too_large_integers


def read_csv(path, label_column):
    """(x float32, y: float64 class numbers or str names, the label column's name for
    messages) of a CSV table with a label column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a BOM, as Excel writes
            # strict: an unclosed quote is an error, not a field swallowing the file
            reader = csv.reader(f, strict=True)
            rows, lines, start = [], [], 1
            for row in reader:
                if any("\n" in field or "\r" in field for field in row):
                    raise DataFileError(f"{path}: line {start}: a quoted field runs over "
                                        "several lines (a quote left open?)")
                if row and any(field.strip() for field in row):  # blank lines are skipped
                    rows.append([field.strip() for field in row])
                    lines.append(reader.line_num)
                start = reader.line_num + 1
    except UnicodeDecodeError:
        raise DataFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:  # no permission, ...: one line naming the file
        raise DataFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except csv.Error as exc:
        hint = "; a quote left open?" if "end of data" in str(exc) else ""
        raise DataFileError(f"{path}: line {start}: not a readable CSV row "
                            f"({exc}{hint})") from None
    if not rows:
        raise DataFileError(f"{path}: the file holds no rows")
    width = len(rows[0])
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise DataFileError(f"{path}: line {line} has {len(row)} fields, the first "
                                f"line has {width}")
    if width < 2:
        raise DataFileError(f"{path}: a CSV for nnumba needs feature columns and a label "
                            f"column; it has {width} column")
    label, header = _label_index(path, rows, label_column)
    if header is not None and header.count(header[label]) > 1:  # the other: a feature, a leak
        raise DataFileError(f"{path}: the header names {header.count(header[label])} columns "
                            f"{header[label]!r}, the label's name; rename all but the label's")
    if header is not None:
        rows, lines = rows[1:], lines[1:]
    if not rows:
        raise DataFileError(f"{path}: the file holds a header and no data rows")
    names = [repr(n) for n in header] if header else [f"{i} (from 0)" for i in range(width)]
    _only_plain_numbers(path, rows, lines, names, label)
    features = [i for i in range(width) if i != label]
    x = _numbers(path, rows, lines, features, names)
    y = np.array([row[label] for row in rows])
    empty = np.flatnonzero(y == "")
    if len(empty):
        raise DataFileError(f"{path}: line {lines[empty[0]]} has no label (column "
                            f"{names[label]})")
    if all(_is_number(text) for text in y):  # class numbers (load_arrays checks them)
        y = y.astype(np.float64)
    return x, y, f"label column {names[label]}"


def _label_index(path, rows, label_column):
    """(label column index, header names or None). The first row is a header when
    it names the label column, when one of its feature fields is text (an empty
    field says nothing: pandas leaves its index column's name empty), when its
    label is text above labels that are all numbers, or when it is pandas' names for
    a plain array's columns (see _column_numbers).  A first label no other row
    holds may be either (_label_alone): a warning says how to name the header."""
    first_row = rows[0]
    width = len(first_row)
    # A name only where the first row can be a header: "2" in a row of numbers is
    # the index 2, not the column whose first value is 2 (nor is an int ever a name).
    numbers_only = all(_is_number(field) for field in first_row if field)
    if isinstance(label_column, str) and label_column in first_row and not numbers_only:
        named = first_row.index(label_column)
        if isinstance(label_column, LabelColumnText):
            _check_unambiguous(path, first_row, label_column, named)
        return named, first_row
    if label_column is None:
        index = width - 1
    else:
        try:  # (ASCII digits only: int() takes "1_0" as 10, and other scripts' digits)
            if isinstance(label_column, str) and not re.fullmatch(r"\s*[+-]?[0-9]+\s*",
                                                                  label_column):
                raise ValueError(label_column)
            index = int(label_column)
        except ValueError:
            raise DataFileError(f"{path}: no column named {label_column!r}; the first line "
                                f"holds {', '.join(map(repr, first_row[:10]))}") from None
        if not -width <= index < width:
            raise DataFileError(f"{path}: label column {index} is out of range: the table "
                                f"has {width} columns (0..{width - 1})")
        index %= width
    is_header = any(field and not _is_number(field)
                    for i, field in enumerate(first_row) if i != index) or (
        len(rows) > 1 and not _is_number(first_row[index])
        and all(_is_number(row[index]) for row in rows[1:])) or _column_numbers(rows, index)
    if not is_header and _label_alone(rows, index):
        warnings.warn(f"{path}: the first row's label {first_row[index]!r} is in no other "
                      f"row, so it is read as a sample alone in its class; if that row is a "
                      f"header of numeric names, name the label column (label_column="
                      f"{first_row[index]!r}, nnumba train --label-column)", UserWarning,
                      stacklevel=4)
    return index, (first_row if is_header else None)


def _label_alone(rows, index) -> bool:
    """Whether the first row's label is text that no other row holds, above text labels:
    a header of numeric column names ("2019,2020,class"), or a first sample alone in its
    class (a small file's) - the two read alike."""
    label, rest = rows[0][index], {row[index] for row in rows[1:]}
    return not _is_number(label) and label not in rest and len(rest) >= 2 and \
        not any(_is_number(text) for text in rest)


def _column_numbers(rows, index) -> bool:
    """Whether the first row is pandas' header for unnamed columns, exactly 0, 1, ...,
    width-1 as integers: at 4 columns or more always (no real sample reads so); in a
    narrower table of small integers, where such rows are data, only above labels none
    of which is its label (index), as a sample it would be alone in its class.
    1, 2, ..., width is no writer's default, so it is always a sample."""
    first = rows[0]
    if len(rows) < 2 or first != [str(i) for i in range(len(first))]:
        return False
    return len(first) >= 4 or not any(_is_number(row[index]) and float(row[index]) == index
                                      for row in rows[1:])


class LabelColumnText(str):
    """A label column as the command line gives it: text that may be a header name or
    an index (the library's str is a name where the header has it, its int an index),
    so where it is both, for two different columns, it is refused."""


def _check_unambiguous(path, header, label_column, named):
    """Refuse a label column text that names one column and is the index of another
    (pandas names columns 0, 1, ...): either reading may be the one meant."""
    try:
        index = int(label_column)
    except ValueError:
        return
    width = len(header)
    if not -width <= index < width or index % width == named:
        return

    def spelt(i):  # an index no header field reads as a name, or None
        return next((t for t in (str(i), str(i - width)) if t not in header), None)

    ways = [f"{spelt(i)} for {what}" for i, what in (
        (named, f"the column named {label_column!r}"),
        (index % width, f"column {index % width} ({header[index % width]!r})")) if spelt(i)]
    raise DataFileError(f"{path}: label column {label_column!r} is ambiguous: it names column "
                        f"{named} and is the index of column {index % width}; give "
                        f"{' or '.join(ways) or 'a header name that is not a number'} "
                        f"(an index from the end is negative)")


def _only_plain_numbers(path, rows, lines, names, label):
    """Refuse a field such as "1_0" or "\u0661" (ARABIC-INDIC DIGIT ONE), which Python's
    float() (and numpy's) reads as 10 or 1 where a CSV writer means no such number: a
    label "\u0661" beside "1" made one class of two spellings. In the label column only
    where its labels are numbers (among names, "2_3" is a name). The file is searched
    once for a digit, "_", a digit, or any non-ASCII byte; only then are the fields
    looked at, to say where."""
    try:
        found = re.search(rb"[0-9]_[0-9]|[\x80-\xff]", Path(path).read_bytes())
    except OSError:
        return  # (it was read just now; a file gone since is read no further)
    if not found:
        return
    names_for_labels = not all(_is_number(row[label]) for row in rows)
    for row, line in zip(rows, lines):
        for i, text in enumerate(row):
            if ("_" in text or not text.isascii()) and _is_number(text) \
                    and not (i == label and names_for_labels):
                raise DataFileError(f"{path}: line {line}, column {names[i]} holds "
                                    f"{text[:40]!r}, which Python reads as {float(text):g}: "
                                    f"write numbers in ASCII digits, without underscores")


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _no_large_integers(path, rows, lines, columns, names):
    """Refuse an integer past 2**24, which float32 rounds (16777217 to 16777216), as
    load_arrays refuses one in an .npz array."""
    for row, line in zip(rows, lines):
        for i in columns:
            digits = row[i].lstrip("+-").lstrip("0")
            # (compared as text first: int() refuses more than 4,300 digits)
            if digits.isdigit() and (len(digits) > 8 or int(digits) > EXACT_INT):
                raise DataFileError(too_large_integers(
                    path, f"line {line}, column {names[i]}", f"{digits[:40]}"))


def _numbers(path, rows, lines, columns, names) -> np.ndarray:
    """The feature columns as float32; the first field that is not a finite
    float32 number is named by line and column."""
    with np.errstate(over="ignore"):
        try:
            x = np.array([[row[i] for i in columns] for row in rows], dtype=np.float32)
        except ValueError:
            x = None
    if x is not None and np.isfinite(x).all():
        if x.size and float(np.abs(x).max()) >= EXACT_INT:  # (rare: then a look)
            _no_large_integers(path, rows, lines, columns, names)
        return x
    for row, line in zip(rows, lines):  # the slow way, to say where
        for i in columns:
            text = row[i]
            if not _is_number(text):
                what = "is empty" if text == "" else f"holds {text[:40]!r}, not a number"
            elif not abs(float(text)) <= FLOAT32_MAX:  # NaN, infinity, or too large
                what = f"holds {text[:40]}, not a finite float32"
            else:
                continue
            raise DataFileError(f"{path}: line {line}, column {names[i]} {what} "
                                "(every column but the label must be a finite number)")
    return np.array([[float(row[i]) for i in columns] for row in rows], dtype=np.float32)
