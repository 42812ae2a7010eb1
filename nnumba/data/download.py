"""Checksummed, atomic downloads (standard library only).

A file appears at its destination only after its SHA-256 matched, so an
interrupted or tampered transfer never leaves a file that looks usable.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

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


class DownloadError(OSError):
    """A download failed or its checksum did not match; nothing was kept."""


def cache_dir() -> Path:
    """`$NNUMBA_CACHE`, or ~/.cache/nnumba."""
    return Path(os.environ.get("NNUMBA_CACHE") or Path.home() / ".cache" / "nnumba").expanduser()


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest_path, sha256: str, *, timeout: float = 30, progress: bool = True) -> Path:
    """Fetch `url` to `dest_path` unless a file with digest `sha256` is there.

    Streams into a temporary file beside the destination and renames it into
    place only once the digest matches; on any failure the temporary file is
    removed and DownloadError is raised.
    """
    sha256 = sha256.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    dest = Path(dest_path)
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            got = _stream(url, out, timeout, progress, dest.name)
        if got != sha256:
            raise DownloadError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}")
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _stream(url, out, timeout, progress, label) -> str:
    """Copy the response body into `out`; return its SHA-256 hex digest."""
    digest, received, total = hashlib.sha256(), 0, None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress:
                    _show(label, received, total)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(
            f"cannot reach {url} ({exc.reason}). Without network access, download the file "
            f"manually into a folder and pass that folder instead.") from exc
    except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
        raise DownloadError(f"transfer of {url} failed after {received} bytes: {exc!r}") from exc
    finally:
        if progress and received:
            sys.stderr.write("\n")
    # http.client returns a short body without an error when the peer closes early.
    if total is not None and received != total:
        raise DownloadError(f"transfer of {url} cut off: got {received} of {total} bytes")
    return digest.hexdigest()


def _show(label: str, received: int, total: int | None) -> None:
    if total:
        done = min(received / total, 1.0)
        bar = "#" * int(done * 30)
        sys.stderr.write(f"\r{label} [{bar:<30}] {done:4.0%} {received / 1e6:.1f}/{total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\r{label} {received / 1e6:.1f} MB")
    sys.stderr.flush()


def download_mnist(root=None, *, progress: bool = True) -> Path:
    """Fetch the 4 MNIST archives into `root` (default: cache_dir()/mnist).

    Tries each mirror in turn (`$NNUMBA_MNIST_MIRROR` replaces the list) and
    returns the folder, ready for `load_mnist`.
    """
    root = Path(root).expanduser() if root is not None else cache_dir() / "mnist"
    override = os.environ.get("NNUMBA_MNIST_MIRROR")
    mirrors = [override] if override else MNIST_MIRRORS
    for name, digest in MNIST_SHA256.items():
        errors = []
        for base in mirrors:
            try:
                download(base.rstrip("/") + "/" + name, root / name, digest, progress=progress)
                break
            except DownloadError as exc:
                errors.append(str(exc))
        else:
            raise DownloadError(
                f"could not download {name} from any mirror:\n  " + "\n  ".join(errors)
                + f"\nDownload the 4 MNIST files ({', '.join(MNIST_SHA256)}) manually into a "
                "folder and pass it as root (load_dataset('mnist', root=FOLDER)).")
    return root
