"""The shared downloader: a local HTTP server stands in for the web."""

import functools
import hashlib
import http.server
import os
import threading

import pytest

from keras_ssm.datasets import download

# The same under every backend (files and checksums).
pytestmark = pytest.mark.backend_independent

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


def test_no_default_data_directory_outside_the_cache(tmp_path, monkeypatch):
    # An installed package knows no checkout: without KERAS_SSM_DATA there
    # is no directory of hand-placed copies, only the cache.
    monkeypatch.delenv("KERAS_SSM_DATA", raising=False)
    monkeypatch.delenv("KERAS_SSM_CACHE", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    assert download.data_dir() is None
    assert download.local_copy("ETT-small", "ETTh1.csv") is None
    expected = tmp_path / "keras_home" / "datasets" / "keras_ssm"
    assert download.cache_dir() == str(expected)
    monkeypatch.setenv("KERAS_SSM_DATA", "")
    assert download.data_dir() is None
    monkeypatch.setenv("KERAS_SSM_DATA", str(tmp_path))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.csv").write_text("x")
    assert download.local_copy("sub", "a.csv") == str(
        tmp_path / "sub" / "a.csv"
    )


def test_downloads_go_through_keras_get_file_with_the_checksum(
    tmp_path, monkeypatch
):
    import keras

    calls = []
    real_get_file = keras.utils.get_file

    def recording_get_file(*args, **kwargs):
        calls.append(kwargs)
        return real_get_file(*args, **kwargs)

    monkeypatch.setattr(keras.utils, "get_file", recording_get_file)
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    target = tmp_path / "cache" / "copy.bin"
    download.download(source.as_uri(), str(target), sha256=sha)
    assert target.read_bytes() == PAYLOAD
    assert len(calls) == 1 and calls[0]["file_hash"] == sha
    assert calls[0]["origin"] == source.as_uri()
    # get_file's temporary directory is gone; only the target is left.
    assert os.listdir(tmp_path / "cache") == ["copy.bin"]
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    with pytest.raises(ValueError, match=r"Checksum mismatch for .*MD5"):
        download.download(source.as_uri(), str(target) + "2", md5="0" * 32)
    download.download(source.as_uri(), str(target) + "3", md5=md5)
    assert calls[-1]["file_hash"] == md5
    assert sorted(os.listdir(tmp_path / "cache")) == ["copy.bin", "copy.bin3"]
    with pytest.raises(download.DataUnavailableError, match="offline"):
        download.download((tmp_path / "none.bin").as_uri(), str(target))
    assert target.read_bytes() == PAYLOAD  # a failed download keeps the copy


def test_written_files_follow_the_umask_not_0600(tmp_path):
    # A cache shared by a group stays readable: files are created as any
    # new file (0666 less the umask), not with mkstemp's private 0600.
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    old = os.umask(0o027)
    try:
        target = tmp_path / "cache" / "copy.bin"
        download.cached_download(
            source.as_uri(), str(target), trust_first_use=True
        )
        partial = download.private_partial(str(tmp_path / "cache" / "x.npz"))
    finally:
        os.umask(old)
    assert os.stat(target).st_mode & 0o777 == 0o640
    assert os.stat(str(target) + ".sha256").st_mode & 0o777 == 0o640
    assert os.stat(partial).st_mode & 0o777 == 0o640
