"""Damaged and hostile files: one nnumba error that names the file, never a crash.

The damaged files are in tests/data (made by tests/data/make_corrupt.py)."""
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import nnumba
from nnumba import io
from nnumba.data import read_idx
from nnumba.errors import (IDXError, JSONFileError, NnumbaError, NonFiniteError, SaveError,
                           WeightsError)
from nnumba.jsonfile import MAX_DEPTH, parse_json, read_json

DATA = Path(__file__).resolve().parent / "data"


# ---- JSON files ------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ("  \n", "empty"),
    ('[{"type": "Linear",', "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, f"nested deeper than {MAX_DEPTH}"),
    ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH}"),
    ("[" + "9" * 5000 + "]", "not usable JSON"),
])
def test_bad_json_names_the_file(tmp_path, content, message):
    path = tmp_path / "spec.json"
    path.write_text(content)
    with pytest.raises(JSONFileError, match=message) as info:
        read_json(path, "model spec")
    assert str(info.value).startswith(f"model spec {path}: ")
    assert "\n" not in str(info.value)


def test_unreadable_json_files_name_the_file(tmp_path):
    (tmp_path / "latin1.json").write_bytes(b'["caf\xe9"]')
    cases = {tmp_path / "latin1.json": "not UTF-8", tmp_path / "absent.json": "cannot be read",
             tmp_path: "not a regular file"}
    for path, message in cases.items():
        with pytest.raises(JSONFileError, match=message) as info:
            read_json(path)
        assert str(path) in str(info.value)


def test_good_json_reads_as_json():
    assert parse_json('[{"type": "ReLU"}]', "x") == [{"type": "ReLU"}]
    inner = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert parse_json(f"[{inner}, {inner}, 1]", "x")[2] == 1  # MAX_DEPTH deep is fine


# ---- weights files ---------------------------------------------------------------------

def test_the_good_fixture_loads():
    """The damaged fixtures below come from this file: each differs by its damage only."""
    model = nnumba.load_model(DATA / "good.npz")
    assert model.spec() == [{"type": "Linear", "in_features": 3, "out_features": 2, "bias": True}]


@pytest.mark.parametrize("name, error, message", [
    ("bad-crc.npz", WeightsError, "Bad CRC"),
    ("truncated.npz", WeightsError, "not a readable nnumba weights file"),
    ("not-a-zip.npz", WeightsError, "not a .npz zip archive"),
    ("spec-not-json.npz", WeightsError, "stored model spec: not valid JSON"),
    ("no-spec.npz", WeightsError, "no model spec inside"),
    ("spec-without-spec.npz", WeightsError, "lacks its 'spec'"),
    ("nan-weights.npz", NonFiniteError, "0.weight holds NaN"),
])
def test_damaged_weights_files_name_the_file(name, error, message):
    path = DATA / name
    with pytest.raises(error, match=message) as info:
        nnumba.load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["bad-crc.npz", "truncated.npz", "not-a-zip.npz",
                                  "nan-weights.npz"])
def test_damaged_weights_leave_the_model_untouched(name):
    model = nnumba.load_model(DATA / "good.npz")
    before = model.flat_params.copy()
    with pytest.raises(NnumbaError, match=name):
        nnumba.load_weights(model, DATA / name)
    assert np.array_equal(model.flat_params, before)


def test_a_stored_spec_that_cannot_be_built_names_the_file(tmp_path):
    good = dict(np.load(DATA / "good.npz"))
    good["__nnumba_spec__"] = np.array('{"spec": [{"type": "NoSuchLayer"}], "dtype": "float32"}')
    np.savez(tmp_path / "unknown.npz", **good)
    with pytest.raises(WeightsError, match=r"unknown\.npz: cannot rebuild.*NoSuchLayer"):
        nnumba.load_model(tmp_path / "unknown.npz")


def test_a_file_of_strings_is_not_taken_for_weights(tmp_path):
    good = dict(np.load(DATA / "good.npz"))
    good["0.bias"] = np.array(["a", "b"])
    np.savez(tmp_path / "strings.npz", **good)
    with pytest.raises(WeightsError, match="0.bias holds <U1 values"):
        nnumba.load_model(tmp_path / "strings.npz")


# ---- saving ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    ("", "no file name"), ("   ", "no file name"), (".", "names a folder"),
    ("sub/", "names a folder"),
])
def test_save_refuses_paths_that_name_no_file(tmp_path, monkeypatch, bad, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SaveError, match=message):
        io.check_save_path(bad)


def test_save_refuses_folders_and_files_in_the_way(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "w.npz").mkdir()
    (tmp_path / "afile").write_text("x")
    for bad, message in [(tmp_path / "runs", "names a folder"), (tmp_path / "w.npz", "names a folder"),
                         (tmp_path / "afile" / "m.npz", "afile is a file, not a folder"),
                         (tmp_path / ("x" * 300), "File name too long")]:
        with pytest.raises(SaveError, match=message) as info:
            io.check_save_path(bad)
        assert "\n" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_save_refuses_a_read_only_folder_up_front(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(SaveError, match=f"cannot save weights to {folder / 'm.npz'}"):
            io.check_save_path(folder / "m")
    finally:
        folder.chmod(0o700)


def test_check_save_path_normalises_and_creates_folders(tmp_path):
    assert io.check_save_path(tmp_path / "a" / "b" / "w") == tmp_path / "a" / "b" / "w.npz"
    assert io.check_save_path(tmp_path / "m.v1") == tmp_path / "m.v1.npz"
    assert (tmp_path / "a" / "b").is_dir() and list((tmp_path / "a" / "b").iterdir()) == []


def test_saved_files_follow_the_umask(tmp_path):
    model = nnumba.build("logreg")
    old = os.umask(0o027)
    try:
        path = nnumba.save(model, tmp_path / "w.npz")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_failed_save_names_the_users_path_and_leaves_nothing(tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(SaveError, match=f"cannot save weights to {tmp_path / 'w.npz'}: No space"):
        nnumba.save(nnumba.build("logreg"), tmp_path / "w.npz")
    assert list(tmp_path.iterdir()) == []


def test_a_save_cleans_up_after_killed_saves_but_not_running_ones(tmp_path):
    model = nnumba.build("logreg")
    stale = [tmp_path / ".w.npz.abcd0123.tmp"]  # temporary_name's
    for path in stale:
        path.write_bytes(b"half a file")
        os.utime(path, (time.time() - 3600,) * 2)  # killed an hour ago
    young = tmp_path / ".w.npz.0000beef.tmp"  # another save's, not locked yet: kept
    young.write_bytes(b"being written")
    # old versions' mkstemp names are a user's too ("w.npz_backup1.tmp"): kept
    others = [tmp_path / ".other.npz.abcd0123.tmp", tmp_path / "notes.tmp", young,
              tmp_path / "w.npzq1w2e3r4.tmp", tmp_path / "w.npz_backup1.tmp"]
    for path in others:
        path.write_bytes(b"not ours")
    busy = tmp_path / ".w.npz.b0000000.tmp"
    # A save in progress in another process holds its temporary file locked.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, sys, time
        f = open({str(busy)!r}, "wb")
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        print("locked", flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) \
        if sys.platform != "win32" else None
    try:
        if holder is not None:
            assert holder.stdout.readline().strip() == "locked"
        nnumba.save(model, tmp_path / "w.npz")
        assert not any(p.exists() for p in stale)
        assert all(p.exists() for p in others)
        if holder is not None:
            assert busy.exists()
    finally:
        if holder is not None:
            holder.communicate("", timeout=30)
    assert nnumba.load_model(tmp_path / "w.npz").spec() == model.spec()


def test_a_save_killed_mid_write_is_cleaned_by_the_next(tmp_path):
    """Kill a real save while it writes: what it leaves, the next save removes."""
    code = textwrap.dedent(f"""
        import numpy as np, nnumba, os, signal
        model = nnumba.build("logreg")
        def killed(f, **arrays):
            f.write(b"part of the arrays")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        np.savez = killed
        nnumba.save(model, {str(tmp_path / "w.npz")!r})
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert done.returncode != 0
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(".w.npz.")
    nnumba.save(nnumba.build("logreg"), tmp_path / "w.npz")  # too young to be taken for
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([left.name, "w.npz"])
    os.utime(left, (time.time() - 3600,) * 2)  # another save's, between create and lock
    nnumba.save(nnumba.build("logreg"), tmp_path / "w.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_saves_to_one_path_from_many_threads_all_succeed(tmp_path):
    """Each save's clean-up took the others' temporary files, not yet locked, for a
    killed save's (fuzz 16: 287 of 2,400 saves failed, 'No such file or directory')."""
    import threading
    model, path, errors = nnumba.build("logreg"), tmp_path / "w.npz", []

    def work():
        for _ in range(40):
            try:
                nnumba.save(model, path)
            except Exception as exc:  # noqa: BLE001 - collected, asserted below
                errors.append(f"{type(exc).__name__}: {exc}")
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


# ---- IDX files -------------------------------------------------------------------------

def test_idx_with_255_dimensions_names_the_file():
    with pytest.raises(IDXError, match=r"255-dims\.idx: 255 dimensions"):
        read_idx(DATA / "255-dims.idx")


def test_idx_gzip_bomb_is_refused_after_what_its_header_declares():
    with pytest.raises(IDXError, match=r"bomb\.idx\.gz: trailing garbage after the 4 bytes"):
        read_idx(DATA / "bomb.idx.gz")


def test_idx_errors_are_nnumba_errors(tmp_path):
    with pytest.raises(NnumbaError, match="not a regular file"):
        read_idx(tmp_path)  # a folder
