"""The shared downloader: a local HTTP server stands in for the web."""

import functools
import hashlib
import http.server
import os
import threading

import pytest

from keras_ssm.datasets import download

PAYLOAD = b"keras-ssm test payload\n" * 100


@pytest.fixture
def server(tmp_path):
    """Serves `tmp_path / "www"` on 127.0.0.1; yields (base URL, hits)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.bin").write_bytes(PAYLOAD)
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def test_download_over_http_then_cache_hit(tmp_path, server):
    base, hits = server
    target = str(tmp_path / "cache" / "sub" / "data.bin")
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    path = download.cached_download(
        f"{base}/data.bin", target, md5=md5, sha256=sha
    )
    assert path == target and open(path, "rb").read() == PAYLOAD
    assert hits == ["/data.bin"]
    assert os.listdir(os.path.dirname(target)) == ["data.bin"]  # no .part
    # A cache hit is verified but not downloaded again.
    assert download.cached_download(f"{base}/data.bin", target, sha256=sha)
    assert hits == ["/data.bin"]


def test_checksum_mismatch_raises_and_keeps_nothing(tmp_path, server):
    base, _ = server
    target = tmp_path / "cache" / "data.bin"
    with pytest.raises(ValueError, match="Checksum mismatch.*SHA-256"):
        download.download(f"{base}/data.bin", str(target), sha256="0" * 64)
    with pytest.raises(ValueError, match="MD5"):
        download.download(f"{base}/data.bin", str(target), md5="0" * 32)
    assert os.listdir(tmp_path / "cache") == []


def test_a_corrupted_cache_is_caught(tmp_path, server):
    base, hits = server
    target = str(tmp_path / "data.bin")
    url = f"{base}/data.bin"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    download.cached_download(url, target, sha256=sha)
    with open(target, "ab") as f:
        f.write(b"!")
    with pytest.raises(ValueError, match="Checksum mismatch"):
        download.cached_download(url, target, sha256=sha)
    assert len(hits) == 1


def test_trust_on_first_use_records_the_digest(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    target = str(tmp_path / "cache" / "copy.bin")
    download.cached_download(source.as_uri(), target, trust_first_use=True)
    record = open(target + ".sha256").read().split()[0]
    assert record == hashlib.sha256(PAYLOAD).hexdigest()
    with open(target, "ab") as f:
        f.write(b"!")
    with pytest.raises(ValueError, match="Checksum mismatch"):
        download.cached_download(source.as_uri(), target, trust_first_use=True)


def test_offline_error_names_the_url_and_the_fallback(tmp_path, server):
    base, _ = server
    target = str(tmp_path / "cache" / "x.bin")
    # Port 9 (discard) on the loopback refuses connections.
    url = "http://127.0.0.1:9/x.bin"
    with pytest.raises(download.DataUnavailableError) as error:
        download.cached_download(url, target)
    message = str(error.value)
    assert url in message and "offline" in message
    assert f"place it at {target}" in message
    assert isinstance(error.value, FileNotFoundError)
    # A server error (404) is reported the same way, with a custom hint.
    with pytest.raises(download.DataUnavailableError, match="put it in X"):
        download.download(f"{base}/missing.bin", target, hint="put it in X")
    assert os.listdir(tmp_path / "cache") == []


def test_directories_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SSM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KERAS_SSM_CACHE", str(tmp_path / "cache"))
    assert download.data_dir() == str(tmp_path / "data")
    assert download.cache_dir() == str(tmp_path / "cache")
    assert os.path.isdir(tmp_path / "cache")
