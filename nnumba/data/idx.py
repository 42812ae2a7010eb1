"""Reader and writer for the IDX format of MNIST and Fashion-MNIST.

Layout: two zero bytes, a dtype code, the number of dimensions, one
big-endian uint32 per dimension, then the data in big-endian C order.
Files may be gzip-compressed; that is told by the gzip magic bytes, not
the file name, since mirrors and users rename files freely.
"""

from __future__ import annotations

import errno
import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import IDXError, MissingFileError, SaveError
from ..layers.validation import flag
from ..paths import regular_file, user_path

__all__ = ["IDXError", "read_idx", "write_idx", "IDX_DTYPES"]

# IDX type code -> big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 24


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a writable native-endian array.

    Reads no more than the header says the data holds (plus one byte, to tell
    trailing garbage), so a gzip bomb costs no more than the shape it declares."""
    path = regular_file(user_path(path, "IDX file", IDXError), "IDX file", IDXError)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise MissingFileError(errno.ENOENT, "IDX file not found", str(path)) from None
    except OSError as exc:
        raise IDXError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    with f:
        compressed = f.read(2) == _GZIP_MAGIC
        f.seek(0)
        try:
            return _parse(gzip.GzipFile(fileobj=f) if compressed else f, path)
        except (OSError, EOFError, zlib.error) as exc:
            if compressed:  # a bad header, CRC or length, or cut short
                raise IDXError(f"{path}: corrupt gzip data ({exc})") from None
            raise IDXError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        except MemoryError:
            raise IDXError(f"{path}: too large to read into memory") from None


def _read_upto(stream, n: int) -> bytearray:
    """Up to ``n`` bytes, fewer only at the end of the stream; read in chunks, so a
    header that declares terabytes costs only what the file really holds."""
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(min(_CHUNK, n - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _parse(stream, path: Path) -> np.ndarray:
    data = _read_upto(stream, 4)
    if len(data) < 4:
        raise IDXError(f"{path}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0:
        twice = " (gzip data inside gzip: it was compressed twice; gunzip it once)" \
            if data[:2] == b"\x1f\x8b" else ""
        raise IDXError(f"{path}: bad magic {data[:4].hex()}, an IDX file starts with "
                       f"0000{twice}")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXError(f"{path}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IDXError(f"{path}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    dims = _read_upto(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise IDXError(f"{path}: truncated header, {ndim} dimensions need {header} bytes, "
                       f"got {4 + len(dims)}")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    if 0 in shape:
        raise IDXError(f"{path}: zero-size dimension in shape {shape}")
    dtype = IDX_DTYPES[code]
    expected = dtype.itemsize * math.prod(shape)  # Python ints: no overflow on hostile headers
    body = _read_upto(stream, expected + 1)
    if len(body) < expected:
        raise IDXError(f"{path}: truncated data, shape {shape} needs {expected} bytes, "
                       f"got {len(body)}")
    if len(body) > expected or stream.read(1):  # read on: gzip checks its CRC at the end
        raise IDXError(f"{path}: trailing garbage after the {expected} bytes of shape {shape}")
    try:
        array = np.frombuffer(body, dtype=dtype).reshape(shape)
    except ValueError as exc:  # more dimensions than numpy allows (32 or 64)
        raise IDXError(f"{path}: {ndim} dimensions cannot be held in a numpy array "
                       f"({exc})") from None
    return array.astype(dtype.newbyteorder("="))  # copies: writable and native


def write_idx(path: str | os.PathLike, array, compress: bool | None = None) -> Path:
    """Write `array` as IDX; `compress=None` gzips when the name ends in .gz."""
    path = user_path(path, "write_idx: the file to write", SaveError)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise IDXError(f"IDX cannot store dtype {array.dtype}; use one of {sorted(map(str, codes))}")
    if not 1 <= array.ndim <= 255 or 0 in array.shape:
        raise IDXError(f"IDX needs 1 to 255 non-empty dimensions, got shape {array.shape}")
    if max(array.shape) >= 2**32:  # a 4-byte size in the header
        raise IDXError(f"IDX stores sizes below 2**32, got shape {array.shape}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    data = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    # None: by the name; else a flag ("no" is truthy: it would gzip)
    compress = path.suffix == ".gz" if compress is None else flag("write_idx", "compress", compress)
    if compress:
        data = gzip.compress(data, mtime=0)  # mtime=0: same bytes for the same array
    try:
        path.write_bytes(data)
    except OSError as exc:  # a folder, a missing folder, no permission
        raise SaveError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
