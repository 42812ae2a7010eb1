"""Checksummed, atomic downloads (standard library only).

A file appears at its destination only after its SHA-256 matched, so an
interrupted or tampered transfer never leaves a file that looks usable. Every
read has a timeout and the whole transfer a deadline, so a server that sends a
byte now and then cannot hold a download forever.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import sys
import threading
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

from ..atomic_file import create, temporary_name
from ..errors import DownloadError
from .file_errors import DataFileError

#: what a download that cannot reach its server advises (once, where mirrors are tried)
OFFLINE = (" Without network access, download the file manually into a folder and pass "
           "that folder instead.")

__all__ = ["DownloadError", "download", "download_mnist", "cache_dir", "MNIST_MIRRORS", "MNIST_SHA256"]

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
# SHA-256 of the published gzip archives (the same in torchvision's and
# tensorflow-datasets' checksum tables).
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
_CHUNK = 1 << 16
#: seconds one file may take in all; $NNUMBA_DOWNLOAD_DEADLINE overrides it
DEADLINE = 900.0


def cache_dir() -> Path:
    """`$NNUMBA_CACHE`, or ~/.cache/nnumba."""
    return Path(os.environ.get("NNUMBA_CACHE") or Path.home() / ".cache" / "nnumba").expanduser()


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest_path, sha256: str, *, timeout: float = 30, progress: bool = True,
             deadline: float | None = None) -> Path:
    """Fetch `url` to `dest_path` unless a file with digest `sha256` is there.

    Streams into a temporary file beside the destination and renames it into
    place only once the digest matches; on any failure the temporary file is
    removed and DownloadError is raised. `timeout` bounds each read, `deadline`
    (seconds; default $NNUMBA_DOWNLOAD_DEADLINE, else DEADLINE) the whole transfer.
    """
    sha256 = sha256.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    deadline = _deadline_seconds(deadline)
    dest = Path(dest_path)
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    tmp = temporary_name(dest, ".part")  # known before the file exists (atomic_file)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(create(tmp), "wb") as out:
            got = _stream(url, out, min(timeout, deadline), deadline, progress, dest.name)
        if got != sha256:
            raise DownloadError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}")
        os.chmod(tmp, 0o644)  # create makes it 0600
        os.replace(tmp, dest)
    except DownloadError:
        raise
    except OSError as exc:  # the destination, not the network
        raise DownloadError(f"cannot write {dest}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _deadline_seconds(deadline) -> float:
    source = "deadline"
    if deadline is None:
        text = os.environ.get("NNUMBA_DOWNLOAD_DEADLINE", "").strip()
        source, deadline = "NNUMBA_DOWNLOAD_DEADLINE", text or DEADLINE
    try:
        seconds = float(deadline)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise DownloadError(f"{source} must be a positive number of seconds, got {deadline!r}")
    return seconds


class _Deadline:
    """Shuts down every socket of one transfer once ``seconds`` have passed: a
    blocked read then returns at once, wherever it is (headers, body, redirect)."""

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets, self._lock = [], threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, sock):
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self):
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def opener(self) -> urllib.request.OpenerDirector:
        """An opener whose HTTP(S) connections report their sockets to this deadline."""
        handlers = [_WatchedHTTP()]
        if hasattr(urllib.request, "HTTPSHandler"):  # Python built with ssl
            handlers.append(_WatchedHTTPS())
        for handler in handlers:
            handler.deadline = self
        return urllib.request.build_opener(*handlers)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


def _shut(sock):
    with suppress(OSError):  # closed already
        sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    """Mixin for urllib's handlers: each connection's socket goes to ``deadline``."""
    deadline: _Deadline

    def do_open(self, http_class, req, **kwargs):
        def connection(*args, **kw):
            conn = http_class(*args, **kw)
            connect = conn.connect

            def watched_connect():
                connect()
                self.deadline.watch(conn.sock)
            conn.connect = watched_connect
            return conn
        return super().do_open(connection, req, **kwargs)


class _WatchedHTTP(_Watched, urllib.request.HTTPHandler):
    pass


if hasattr(urllib.request, "HTTPSHandler"):
    class _WatchedHTTPS(_Watched, urllib.request.HTTPSHandler):
        pass


def _stream(url, out, timeout, deadline, progress, label) -> str:
    """Copy the response body into `out`; return its SHA-256 hex digest."""
    digest, received, total = hashlib.sha256(), 0, None
    with _Deadline(deadline) as watchdog:
        try:
            with watchdog.opener().open(url, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdecimal() else None
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if progress:
                        _show(label, received, total)
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
            if watchdog.expired:
                raise _too_slow(url, deadline, received) from None
            if isinstance(exc, urllib.error.URLError):  # not reached
                raise DownloadError(f"cannot reach {url} ({exc.reason}).{OFFLINE}") from exc
            raise DownloadError(f"transfer of {url} failed after {received} bytes: "
                                f"{exc!r}") from exc
        except ValueError as exc:  # a malformed URL: "unknown url type", InvalidURL
            raise DownloadError(f"{url}: not a usable URL ({exc})") from None
        finally:
            if progress and received:
                sys.stderr.write("\n")
        if watchdog.expired:  # the socket shut down: reads ended as at the end of the body
            raise _too_slow(url, deadline, received)
    # http.client returns a short body without an error when the peer closes early.
    if total is not None and received != total:
        raise DownloadError(f"transfer of {url} cut off: got {received} of {total} bytes")
    return digest.hexdigest()


def _too_slow(url, deadline, received) -> DownloadError:
    return DownloadError(f"{url}: not complete after the {deadline:g} s deadline "
                         f"({received} bytes received); set NNUMBA_DOWNLOAD_DEADLINE for "
                         f"a slow connection")


def _show(label: str, received: int, total: int | None) -> None:
    if total:
        done = min(received / total, 1.0)
        bar = "#" * int(done * 30)
        sys.stderr.write(f"\r{label} [{bar:<30}] {done:4.0%} {received / 1e6:.1f}/{total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\r{label} {received / 1e6:.1f} MB")
    sys.stderr.flush()


def _check_foreign(root):
    """DownloadError where ``root`` holds a file of an MNIST archive's name that is not
    that archive: Fashion-MNIST's and KMNIST's have the same names, and a user's data
    set must not be swapped for MNIST without a word."""
    for name, digest in MNIST_SHA256.items():
        path = root / name
        if os.path.lexists(path) and not (path.is_file() and sha256_file(path) == digest):
            raise DownloadError(f"{path} exists and is not MNIST's {name} (Fashion-MNIST's "
                                f"and KMNIST's archives have the same names): refusing to "
                                f"replace it; move it, or download into another folder")


def download_mnist(root=None, *, progress: bool = True) -> Path:
    """Fetch the 4 MNIST archives into `root` (default: cache_dir()/mnist).

    Tries each mirror in turn (`$NNUMBA_MNIST_MIRROR`, one URL or several separated
    by spaces, replaces the list) and returns the folder, ready for `load_mnist`.
    """
    given = root is not None
    root = Path(root).expanduser() if given else cache_dir() / "mnist"
    if root.exists() and not root.is_dir():  # else every mirror fails with 'File exists'
        raise DataFileError(f"cannot download MNIST into {root}: it is a file, not a folder")
    if given:  # only nnumba's own cache may have its stale files replaced
        _check_foreign(root)
    mirrors = os.environ.get("NNUMBA_MNIST_MIRROR", "").split() or MNIST_MIRRORS
    for name, digest in MNIST_SHA256.items():
        errors = []
        for base in mirrors:
            try:
                download(base.rstrip("/") + "/" + name, root / name, digest, progress=progress)
                break
            except DownloadError as exc:
                errors.append(str(exc).replace(OFFLINE, ""))  # said once, below
        else:
            raise DownloadError(
                f"could not download {name} from any mirror ({'; '.join(errors)}). Download "
                f"the 4 MNIST files ({', '.join(MNIST_SHA256)}) manually into a folder and "
                f"pass it as the data folder (nnumba train --data-dir, or load_dataset's "
                f"root).")
    return root
