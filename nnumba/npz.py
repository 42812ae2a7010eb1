"""Reading an .npz archive's headers before its data: np.load allocates what a
header declares, and reads a member that is no .npy array whole, whatever its size
(a compressed member of a few kB may hold gigabytes of zeros)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .layers.validation import check_memory


def npz_headers(path) -> dict:
    """{array name: (shape, dtype)} from the header of each member, read without its
    data; {} where the file is no zip archive (np.load then says what it is).
    ValueError naming a member that is no .npy array, is named twice (zipfile reads
    the last, another tool may read the first) or whose header is unreadable."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return {}
    except NotImplementedError as exc:  # a zip of a later version than zipfile reads
        raise ValueError(f"a zip archive this Python cannot read ({exc})") from None
    headers = {}
    with archive:
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise ValueError(f"member {name!r:.80} is not a .npy array")
            if name[:-4] in headers:
                raise ValueError(f"member {name!r:.80} appears twice")
            try:
                with archive.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
            except Exception as exc:  # noqa: BLE001 - any damage: the file is refused
                raise ValueError(f"member {name!r:.80} has no readable .npy header "
                                 f"({type(exc).__name__}: {str(exc)[:200]})") from None
            headers[name[:-4]] = (tuple(shape), np.dtype(dtype))
    return headers


def check_npz_memory(path, headers: dict):
    """TooLargeError where the arrays ``headers`` declare would not fit in memory."""
    total = sum(float(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                for shape, dtype in headers.values())
    check_memory(f"{path}: the arrays its headers declare", total)


def zip_members(path: Path) -> list[str]:
    """The names in the zip archive at ``path``; none where it is not one."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError, NotImplementedError):  # (a later zip version)
        return []


def is_nnumba_npz(path) -> bool:
    """Whether ``path`` is a weights file nnumba.save wrote (not a torch state_dict),
    by its content: a copy renamed w.npz.bak or w.bin is one too."""
    path = Path(path)  # (a named pipe is none, and opening it would wait for a writer)
    try:
        return path.is_file() and "__nnumba_spec__.npy" in zip_members(path)
    except OSError:  # a name too long: whoever reads it says so
        return False
