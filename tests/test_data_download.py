"""Downloads for real, against an HTTP server on 127.0.0.1 (never elsewhere)."""

import gzip
import hashlib
import http.server
import socket
import sys
import threading

import numpy as np
import pytest

from nnumba.data import DownloadError, cache_dir, download, download_mnist, load_dataset
from nnumba.data.idx import write_idx

# The package re-exports the function download(), which hides the module of
# the same name as an attribute; sys.modules still holds the module.
dl = sys.modules["nnumba.data.download"]

BODY = bytes(range(256)) * 400  # 100 KiB: several read chunks
BODY_SHA = hashlib.sha256(BODY).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}  # URL path -> body
    requests: list = []  # every path asked for

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path == "/cut":  # promise more than is sent, then hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY) + 1000))
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def local_only(monkeypatch, tmp_path):
    """No proxy may reroute 127.0.0.1; no test touches the real cache."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NNUMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NNUMBA_MNIST_MIRROR", raising=False)
    Handler.files = {"/good.bin": BODY}
    Handler.requests = []


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once the socket is closed


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("NNUMBA_CACHE")
    assert cache_dir().parts[-2:] == (".cache", "nnumba")


def test_good_file_is_downloaded_once_then_cached(server, tmp_path, capsys):
    dest = tmp_path / "cache" / "sub" / "good.bin"
    assert download(f"{server}/good.bin", dest, BODY_SHA, timeout=5) == dest
    assert dest.read_bytes() == BODY
    assert list(dest.parent.iterdir()) == [dest]  # no temporary file left
    out = capsys.readouterr()
    assert out.out == "" and "good.bin" in out.err and "100%" in out.err
    download(f"{server}/good.bin", dest, BODY_SHA.upper(), timeout=5, progress=False)
    assert Handler.requests == ["/good.bin"]
    assert capsys.readouterr().err == ""


def test_stale_file_is_replaced(server, tmp_path):
    dest = tmp_path / "good.bin"
    dest.write_bytes(b"stale")
    download(f"{server}/good.bin", dest, BODY_SHA, timeout=5, progress=False)
    assert dest.read_bytes() == BODY and len(Handler.requests) == 1


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        download(f"{server}/good.bin", tmp_path / "d" / "good.bin", wrong, timeout=5, progress=False)
    message = str(info.value)
    assert "checksum mismatch" in message and f"{server}/good.bin" in message
    assert wrong in message and BODY_SHA in message
    assert list((tmp_path / "d").iterdir()) == []


def test_cut_off_transfer_keeps_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match=r"cut off: got 51200 of 103400 bytes"):
        download(f"{server}/cut", tmp_path / "d" / "cut.bin", BODY_SHA, timeout=5, progress=False)
    assert list((tmp_path / "d").iterdir()) == []


def test_http_error_keeps_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server}/absent", tmp_path / "d" / "x.bin", BODY_SHA, timeout=5, progress=False)
    assert list((tmp_path / "d").iterdir()) == []


def test_unreachable_server_advises_manual_download(closed_port, tmp_path):
    with pytest.raises(DownloadError, match="manually into a folder and pass") as info:
        download(f"http://127.0.0.1:{closed_port}/x.bin", tmp_path / "x.bin", BODY_SHA, timeout=5)
    assert isinstance(info.value, OSError)
    assert not (tmp_path / "x.bin").exists()


def test_rejects_malformed_digest(tmp_path):
    with pytest.raises(ValueError, match="SHA-256"):
        download("http://127.0.0.1:1/x", tmp_path / "x", "abc" * 22, progress=False)


def test_mnist_digest_table_is_well_formed():
    assert sorted(dl.MNIST_SHA256) == sorted(
        f"{p}-{k}-idx{d}-ubyte.gz" for p in ("train", "t10k") for k, d in (("images", 3), ("labels", 1)))
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in dl.MNIST_SHA256.values())


@pytest.fixture
def fake_mnist(monkeypatch, tmp_path):
    """Tiny valid MNIST archives served under /mirror/, their digests patched in."""
    rng = np.random.default_rng(2)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte.gz": np.arange(6, dtype=np.uint8),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte.gz": np.array([9, 8, 7], np.uint8)}
    for name, array in arrays.items():
        body = write_idx(tmp_path / name, array).read_bytes()
        assert body[:2] == b"\x1f\x8b" and gzip.decompress(body)
        Handler.files[f"/mirror/{name}"] = body
        monkeypatch.setitem(dl.MNIST_SHA256, name, hashlib.sha256(body).hexdigest())
    return arrays


def test_download_mnist_from_mirror_then_load(server, fake_mnist, monkeypatch, tmp_path):
    monkeypatch.setenv("NNUMBA_MNIST_MIRROR", f"{server}/mirror")  # no trailing slash on purpose
    d = load_dataset("mnist", download=True)
    assert (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()
    assert d.y_test.tolist() == [9, 8, 7] and d.x_train.shape == (6, 1, 28, 28)
    assert len(Handler.requests) == 4
    assert load_dataset("mnist").y_train.tolist() == list(range(6))  # from the cache, no request
    download_mnist(progress=False)
    assert len(Handler.requests) == 4


def test_download_mnist_falls_back_to_next_mirror(server, fake_mnist, monkeypatch, tmp_path):
    monkeypatch.setattr(dl, "MNIST_MIRRORS", [f"{server}/broken/", f"{server}/mirror/"])
    root = download_mnist(tmp_path / "here", progress=False)
    assert sorted(p.name for p in root.iterdir()) == sorted(fake_mnist)
    assert sum(r.startswith("/broken/") for r in Handler.requests) == 4


def test_download_mnist_without_network_says_what_to_do(closed_port, fake_mnist, monkeypatch, tmp_path):
    monkeypatch.setenv("NNUMBA_MNIST_MIRROR", f"http://127.0.0.1:{closed_port}/")
    with pytest.raises(DownloadError, match="manually into a folder and pass it as the data folder"):
        download_mnist(tmp_path / "m", progress=False)
    assert not any((tmp_path / "m").iterdir())
