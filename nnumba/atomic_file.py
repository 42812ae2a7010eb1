"""Files that appear whole or not at all: written to a temporary file beside the
target (".NAME.XXXXXXXX.tmp"), flushed to disk, then renamed over it.  A file
replaced keeps its permissions; a new one gets open()'s (0666 less the umask)."""
from __future__ import annotations

import os
import re
import secrets
import sys
import time
from contextlib import suppress
from pathlib import Path

# An exclusive flock marks a temporary file as being written. Without fcntl
# (Windows) there is no need: a file open elsewhere cannot be deleted there.
try:
    import fcntl
except ImportError:
    fcntl = None

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def write_whole(path: Path, write) -> None:
    """``write(f)`` into a temporary file, then rename it to ``path`` (a symbolic link
    would be replaced: give the file it points to); OSError as the system gives it,
    nothing left behind."""
    remove_stale(path)
    mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666 & ~_umask()
    tmp = temporary_name(path)  # known before the file exists: a Ctrl-C leaves none behind
    try:
        fd = create(tmp)
        with os.fdopen(fd, "wb") as f:
            held = _hold(f)  # another save's clean-up leaves a held file alone
            handled = sys.exc_info()[1]  # a Ctrl-C being handled (a save of the weights on it)
            try:
                write(f)
            except Exception as exc:  # zipfile's close, refused after a Ctrl-C inside write
                stop = exc.__context__
                if isinstance(stop, KeyboardInterrupt) and stop is not handled:
                    raise stop from None
                raise
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
            os.chmod(tmp, mode)  # create gives 0600
            if held:  # rename while still held; Windows cannot rename an open file
                os.replace(tmp, path)
        if not held:
            os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def temporary_name(path: Path, suffix: str = ".tmp") -> str:
    """A name for a temporary file beside ``path``: ".NAME.XXXXXXXX.tmp".  The caller
    holds it before :func:`create` makes the file (mkstemp's name came back only once
    it returned: a Ctrl-C just before left the file behind)."""
    return str(path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}")


def create(tmp: str) -> int:
    """The new file ``tmp`` (mode 0600), opened for writing: its descriptor."""
    return os.open(tmp, _NEW, 0o600)


def probe(path: Path) -> None:
    """Make and delete a temporary file beside ``path``: OSError where none can be written."""
    tmp = temporary_name(path)
    try:
        os.close(create(tmp))
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)


#: a temporary file untouched this long, and not held, was left by a killed write (a
#: younger one may be another write's between its creation and its lock)
STALE_SECONDS = 60


def remove_stale(path: Path):
    """Delete what writes to ``path`` killed midway left behind, except files a running
    write holds: names as :func:`temporary_name` makes them.  (The mkstemp names
    "NAMExxxxxxxx.tmp" of earlier versions are left: a user's "w.npz_backup1.tmp",
    a copy of the weights, has such a name.)"""
    ours = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{8}}\.tmp")
    try:
        candidates = [p for p in path.parent.iterdir() if ours.fullmatch(p.name)]
    except OSError:
        return
    for candidate in candidates:
        with suppress(OSError):  # gone already, or not ours to remove: it costs only disk space
            if time.time() - candidate.stat().st_mtime > STALE_SECONDS \
                    and not _in_use(candidate):
                candidate.unlink()


def _hold(f) -> bool:
    """Lock ``f`` until it is closed; False where locks are not available."""
    if fcntl is None:
        return False
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    return True


def _in_use(path: Path) -> bool:
    if fcntl is None:
        return False
    with open(path, "rb") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def _umask() -> int:
    """The process's umask: read from Linux's /proc, which leaves it alone; elsewhere
    the only portable way is to set it (briefly: another thread's file made in that
    moment would get 0o022)."""
    with suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    with suppress(OSError):
        os.fsync(fd)
    os.close(fd)
