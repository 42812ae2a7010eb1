"""Downloads against hostile servers on 127.0.0.1: a drip-feeding one must not hold a
download past its deadline, and a malformed mirror must not stop the fallback."""
import hashlib
import http.server
import sys
import threading
import time

import pytest

from nnumba.data import DownloadError, download, download_mnist
from nnumba.errors import NnumbaError

dl = sys.modules["nnumba.data.download"]

BODY = b"x" * 1000
BODY_SHA = hashlib.sha256(BODY).hexdigest()
DRIP_SECONDS = 0.2  # between bytes: far below any per-read timeout


class Dripping(http.server.BaseHTTPRequestHandler):
    """/body: headers at once, then the body a byte at a time; /headers: the status
    line, then the headers a byte at a time; /good.bin and /m/*: all at once."""

    def do_GET(self):
        try:
            if self.path == "/headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for byte in b"Content-Length: 1000\r\n" * 100:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(DRIP_SECONDS)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            if self.path == "/good.bin" or self.path.startswith("/m/"):
                self.wfile.write(BODY)
                return
            for byte in BODY:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(DRIP_SECONDS)
        except OSError:
            pass  # the client gave up, as it should

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def local_only(monkeypatch, tmp_path):
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NNUMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NNUMBA_MNIST_MIRROR", raising=False)
    monkeypatch.delenv("NNUMBA_DOWNLOAD_DEADLINE", raising=False)


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_drip_feeding_server_meets_the_deadline(server, tmp_path, where):
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"not complete after the 1\.5 s deadline"):
        download(f"{server}/{where}", tmp_path / "d" / "x.bin", BODY_SHA, timeout=30,
                 deadline=1.5, progress=False)
    assert time.monotonic() - start < 10  # the drip would take 200 s; the timeout 30 s a read
    assert list((tmp_path / "d").iterdir()) == []


def test_the_deadline_comes_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NNUMBA_DOWNLOAD_DEADLINE", "1")
    with pytest.raises(DownloadError, match="1 s deadline"):
        download(f"{server}/body", tmp_path / "x.bin", BODY_SHA, progress=False)
    for bad in ("soon", "0", "-5", "inf", "nan"):
        monkeypatch.setenv("NNUMBA_DOWNLOAD_DEADLINE", bad)
        with pytest.raises(DownloadError, match="NNUMBA_DOWNLOAD_DEADLINE must be a positive"):
            download(f"{server}/good.bin", tmp_path / "x.bin", BODY_SHA, progress=False)


def test_a_fast_server_is_untouched_by_the_deadline(server, tmp_path):
    dest = download(f"{server}/good.bin", tmp_path / "x.bin", BODY_SHA, deadline=30,
                    progress=False)
    assert dest.read_bytes() == BODY


@pytest.mark.parametrize("url", ["not-a-url", "http://[::1:bad", "http://127.0.0.1:99999"])
def test_malformed_urls_are_download_errors(tmp_path, url):
    with pytest.raises(DownloadError) as info:
        download(f"{url}/x.bin", tmp_path / "x.bin", BODY_SHA, progress=False)
    assert url in str(info.value) and isinstance(info.value, NnumbaError)


def test_a_malformed_mirror_falls_back_to_the_next(server, tmp_path, monkeypatch):
    for name in dl.MNIST_SHA256:
        monkeypatch.setitem(dl.MNIST_SHA256, name, BODY_SHA)  # what the server sends
    monkeypatch.setenv("NNUMBA_MNIST_MIRROR", f"not-a-url {server}/m/")
    root = download_mnist(tmp_path / "mnist", progress=False)
    assert sorted(p.name for p in root.iterdir()) == sorted(dl.MNIST_SHA256)


def test_all_mirrors_failing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("NNUMBA_MNIST_MIRROR", "not-a-url also-not-one")
    with pytest.raises(DownloadError, match="manually into a folder") as info:
        download_mnist(tmp_path / "mnist", progress=False)
    assert "\n" not in str(info.value) and "also-not-one" in str(info.value)


def test_an_unwritable_destination_is_a_download_error(server, tmp_path):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(DownloadError, match="cannot write"):
        download(f"{server}/good.bin", tmp_path / "file" / "x.bin", BODY_SHA, progress=False)
