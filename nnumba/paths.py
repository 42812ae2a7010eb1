"""Paths given by users, checked before the operating system sees them."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import FileFormatError


def user_path(path, what: str, error=FileFormatError) -> Path:
    """``path`` as a Path, or ``error`` naming ``what`` ("weights file", ...) for a value
    that cannot name a file: not a str or os.PathLike, empty, or holding a NUL byte
    (which open() refuses with a bare ValueError, and Path.exists() hides as False)."""
    if not isinstance(path, (str, os.PathLike)):
        raise error(f"{what}: expected a path (str or os.PathLike), got a {type(path).__name__}")
    text = os.fsdecode(path)  # str as it is; bytes (or a PathLike giving them) decoded
    if not text.strip():
        raise error(f"no {what} given (an empty path)")
    if "\0" in text:
        raise error(f"{what} {text!r}: a path cannot hold a NUL byte")
    return Path(text)


def regular_file(path: Path, what: str, error=FileFormatError) -> Path:
    """``path``, or ``error`` naming ``what`` where it exists and is no regular file:
    open() on a named pipe waits for a writer that never comes, /dev/zero never ends."""
    try:
        special = path.exists() and not path.is_file()
    except OSError as exc:  # a name too long, a folder it may not search
        raise error(f"{what} {str(path)[:200]}: {exc.strerror or exc}") from None
    if special:
        raise error(f"{what} {path}: not a regular file")
    return path


def model_file(model) -> str | None:
    """".json" (a spec file) or ".npz" (a saved model) where ``model`` names a model
    file, None where it is a registered model name or no path: by its suffix in any
    case (SPEC.JSON), or, a file nnumba.save wrote, by its content (w.npz.bak)."""
    from .registry import get_registry
    from .npz import is_nnumba_npz
    if not isinstance(model, (str, os.PathLike)) or \
            model in {name for name, _ in get_registry().all_entries("model")}:
        return None
    path = Path(os.fsdecode(model))
    suffix = path.suffix.lower()
    if suffix in (".json", ".npz"):
        return suffix
    return ".npz" if is_nnumba_npz(path) else None
