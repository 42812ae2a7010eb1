"""The IDX reader/writer: round trips, every malformed case, the embedded files."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnumba.data.idx import IDX_DTYPES, IDXError, read_idx, write_idx

EMBEDDED = Path(__file__).resolve().parents[1] / "nnumba" / "data" / "mnist5k"
# Published in /work/shared/data/README.md for the mnist-5k files.
EMBEDDED_SHA256 = {
    "images-idx3-ubyte.gz": "35c4442b3738be6b58df4ff21f19341f0368e1c3d24840252fb3ff06ba646387",
    "labels-idx1-ubyte.gz": "abdbe68beb8b8e1983d8086fdcb07e198f851fb0c1af91276c18f154ef0b67d8",
}
HYPOTHESIS = settings(max_examples=150, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


def sample(dtype, shape=(3, 4, 5)):
    rng = np.random.default_rng(0)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def idx_bytes(array, code):
    """IDX bytes built by hand, independent of write_idx."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(IDX_DTYPES[code]).tobytes()


@pytest.mark.parametrize("code", sorted(IDX_DTYPES))
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_dtype(tmp_path, code, compress):
    array = sample(IDX_DTYPES[code].newbyteorder("="))
    path = write_idx(tmp_path / "a.idx", array, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    back = read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    back[0] = 0  # the result is a writable copy, not a view of the file bytes


@pytest.mark.parametrize("code", sorted(IDX_DTYPES))
def test_reads_big_endian_bytes_written_by_hand(tmp_path, code):
    array = sample(IDX_DTYPES[code].newbyteorder("="), shape=(2, 3))
    (tmp_path / "h.idx").write_bytes(idx_bytes(array, code))
    np.testing.assert_array_equal(read_idx(tmp_path / "h.idx"), array)


def test_gzip_detected_by_content_not_name(tmp_path):
    array = sample(np.uint8)
    write_idx(tmp_path / "plain.gz", array, compress=False)
    write_idx(tmp_path / "packed.idx", array, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed.idx"), array)


def test_compress_none_follows_suffix_and_is_reproducible(tmp_path):
    a = write_idx(tmp_path / "x.gz", sample(np.int16))
    b = write_idx(tmp_path / "y.gz", sample(np.int16))
    assert a.read_bytes()[:2] == b"\x1f\x8b" and a.read_bytes() == b.read_bytes()
    assert write_idx(tmp_path / "x.idx", sample(np.int16)).read_bytes()[:2] == b"\x00\x00"


@pytest.mark.parametrize("bad", [np.zeros(3, np.int64), np.zeros(3, bool), np.zeros((2, 0), np.uint8),
                                 np.uint8(5)])
def test_write_rejects_what_idx_cannot_hold(tmp_path, bad):
    with pytest.raises(ValueError):
        write_idx(tmp_path / "bad.idx", bad)


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4), 0x08)


@pytest.mark.parametrize("data, message", [
    (b"", "too short"),
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x01" + GOOD[4:], "bad magic"),
    (b"\x00\x00\x07\x02" + GOOD[4:], "unknown IDX dtype code 0x07"),
    (b"\x00\x00\x08\x00", "zero dimensions"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x03", "truncated header"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x00\x00\x00\x00\x04", "zero-size dimension"),
    (GOOD[:-1], "truncated data"),
    (GOOD + b"\x00", "trailing garbage"),
    (b"\x1f\x8b" + b"not really gzip", "corrupt gzip"),
    (gzip.compress(GOOD)[:-5], "corrupt gzip"),
    (gzip.compress(GOOD[:-3]), "truncated data"),
])
def test_malformed_files_raise_idx_error_naming_the_file(tmp_path, data, message):
    path = tmp_path / "broken-file.idx"
    path.write_bytes(data)
    with pytest.raises(IDXError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere.idx"
    with pytest.raises(FileNotFoundError, match="nowhere.idx"):
        read_idx(path)


@HYPOTHESIS
@given(cut=st.integers(min_value=0, max_value=len(GOOD) - 1), compress=st.booleans())
def test_any_truncation_raises(tmp_path, cut, compress):
    data = gzip.compress(GOOD, mtime=0) if compress else GOOD
    cut = cut * len(data) // len(GOOD)
    path = tmp_path / "cut.idx"
    path.write_bytes(data[:cut])
    with pytest.raises(IDXError, match="cut.idx"):
        read_idx(path)


@HYPOTHESIS
@given(data=st.one_of(st.binary(max_size=64),
                      st.binary(max_size=40).map(lambda b: b"\x00\x00" + b),
                      st.binary(max_size=40).map(lambda b: b"\x1f\x8b" + b)))
def test_random_bytes_raise_or_are_a_valid_file(tmp_path, data):
    """Garbage either raises IDXError or is, by chance, a well-formed file
    whose exact bytes the writer reproduces: never a crash, never junk."""
    path = tmp_path / "garbage.idx"
    path.write_bytes(data)
    try:
        array = read_idx(path)
    except IDXError as exc:
        assert str(path) in str(exc)
        return
    assert write_idx(tmp_path / "again.idx", array, compress=False).read_bytes() == data


def test_embedded_files_are_the_published_ones():
    for name, digest in EMBEDDED_SHA256.items():
        assert hashlib.sha256((EMBEDDED / name).read_bytes()).hexdigest() == digest
    images = read_idx(EMBEDDED / "images-idx3-ubyte.gz")
    labels = read_idx(EMBEDDED / "labels-idx1-ubyte.gz")
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    assert images.max() == 255 and images.min() == 0
