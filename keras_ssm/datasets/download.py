"""Data files from the web: a cache, checksums and a clear offline error.

Shared by every loader of `keras_ssm.datasets`. A download is written to
its own `<target>.<random>.part` file and renamed to `target` only once its
checksum passes, so an interrupted or corrupt download never looks like a
cached file, and processes that fetch the same file at once do not write
into each other's copy. Files whose
publisher gives no checksum can be trusted on first use: the SHA-256 of the
first copy is written beside it (`<target>.sha256`) and later reads are
checked against it, so a truncated or changed file is still caught.
"""

import hashlib
import os
import tempfile
import urllib.error
import urllib.request

REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)

_ALGORITHM_NAMES = {"md5": "MD5", "sha256": "SHA-256"}


class DataUnavailableError(RuntimeError, FileNotFoundError):
    """A data file is neither local nor downloadable (e.g. offline).

    A `FileNotFoundError` too, so callers that catch missing files (the
    forecasting CLI) also catch a failed download.
    """


def data_dir():
    """Directory of hand-placed data files.

    Returns:
        `$KERAS_SSM_DATA`, by default `<repo>/../shared/data` (beside a
        clone of the repository), absolute.
    """
    default = os.path.join(REPO_ROOT, os.pardir, "shared", "data")
    return os.path.abspath(os.environ.get("KERAS_SSM_DATA", default))


def cache_dir():
    """Directory of downloaded and generated files (created if missing).

    Returns:
        `$KERAS_SSM_CACHE`, by default `~/.keras/datasets/keras_ssm` (beside
        the `keras.datasets` downloads), absolute.
    """
    default = os.path.join(
        os.path.expanduser("~"), ".keras", "datasets", "keras_ssm"
    )
    path = os.path.abspath(os.environ.get("KERAS_SSM_CACHE", default))
    os.makedirs(path, exist_ok=True)
    return path


def file_digest(path, algorithm="sha256"):
    """Hex digest of a file, read in 1 MiB chunks.

    Args:
        path: the file.
        algorithm: a `hashlib` name, e.g. "sha256" or "md5".

    Returns:
        The lower-case hex digest.
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path, md5=None, sha256=None, trust_first_use=False):
    """Checks a file against the given digests.

    Args:
        path: the file.
        md5: expected MD5 hex digest, or None.
        sha256: expected SHA-256 hex digest, or None.
        trust_first_use: with neither digest, record the file's SHA-256 in
            `<path>.sha256` the first time and check against it later.

    Raises:
        ValueError: when a digest does not match; the message names the
            file and both digests.
    """
    record = f"{path}.sha256"
    if md5 is None and sha256 is None and trust_first_use:
        if not os.path.exists(record):
            with open(record, "w") as f:
                f.write(f"{file_digest(path)}  {os.path.basename(path)}\n")
            return
        with open(record) as f:
            sha256 = f.read().split()[0]
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        actual = file_digest(path, algorithm)
        if actual != expected.lower():
            raise ValueError(
                f"Checksum mismatch for {path}: its "
                f"{_ALGORITHM_NAMES[algorithm]} is {actual}, expected "
                f"{expected}. The file is corrupt or incomplete; delete it "
                "and download again."
            )


def download(url, target, md5=None, sha256=None, progress=False, hint=None):
    """Downloads `url` to `target` atomically, verifying its checksum.

    Args:
        url: the URL (`http(s)://` or `file://`).
        target: where the file ends up; its directory is created.
        md5: expected MD5 hex digest, or None.
        sha256: expected SHA-256 hex digest, or None.
        progress: show a tqdm bar while downloading.
        hint: what to tell the user to do when the download fails (default:
            place a copy at `target` by hand).

    Returns:
        `target`.

    Raises:
        DataUnavailableError: when the URL cannot be read (offline, server
            error); the message names the URL and the manual fallback.
        ValueError: when the checksum does not match; nothing is kept.

    Example:

    ```python
    download("file:///tmp/a.csv", "/tmp/cache/a.csv")
    # '/tmp/cache/a.csv'
    ```
    """
    partial = private_partial(target)
    try:
        _copy_url(url, partial, progress, os.path.basename(target))
        verify_checksum(partial, md5=md5, sha256=sha256)
    except (urllib.error.URLError, OSError) as error:
        _remove(partial)
        hint = hint or f"Download it by hand and place it at {target}."
        raise DataUnavailableError(
            f"Could not download {url} ({error}). Are you offline? {hint}"
        ) from error
    except BaseException:
        _remove(partial)
        raise
    os.replace(partial, target)
    return target


def cached_download(
    url,
    target,
    md5=None,
    sha256=None,
    trust_first_use=False,
    progress=False,
    hint=None,
):
    """`target` if it is there and valid, else downloads it first.

    Args:
        url: where to download from when `target` is missing.
        target: the cache path of the file.
        md5: expected MD5 hex digest, or None.
        sha256: expected SHA-256 hex digest, or None.
        trust_first_use: with neither digest, record and later check the
            SHA-256 of the first copy (see `verify_checksum`).
        progress: show a tqdm bar while downloading.
        hint: the manual fallback named by the offline error.

    Returns:
        `target`, verified.

    Raises:
        DataUnavailableError: when `target` is missing and the download
            fails.
        ValueError: when the cached or downloaded file fails its checksum.

    Example:

    ```python
    path = cached_download(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        os.path.join(cache_dir(), "cifar10", "cifar-10-python.tar.gz"),
        md5="c58f30108f718f92721af3b95e74349a")
    ```
    """
    if os.path.exists(target):
        verify_checksum(target, md5, sha256, trust_first_use=trust_first_use)
        return target
    download(url, target, md5, sha256, progress=progress, hint=hint)
    if trust_first_use and md5 is None and sha256 is None:
        verify_checksum(target, trust_first_use=True)  # records the digest
    return target


def _copy_url(url, path, progress, name):
    """Streams `url` into `path` in 1 MiB chunks (`name` labels the bar)."""
    request = urllib.request.Request(url, headers={"User-Agent": "keras-ssm"})
    with urllib.request.urlopen(request, timeout=60) as response:
        bar = None
        if progress:
            from tqdm import tqdm

            total = int(response.headers.get("Content-Length") or 0) or None
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=name)
        with open(path, "wb") as f:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()


def private_partial(target, suffix=".part"):
    """A new, empty file beside `target` that only its caller writes.

    Write there, then `os.replace` it onto `target`: processes that make the
    same file at once each write their own copy, and the last atomic rename
    wins. The directory of `target` is created.

    Args:
        target: the file to be written.
        suffix: the temporary file's ending (".npz" for `np.savez`).

    Returns:
        The temporary file's path, `<target>.<random><suffix>`.
    """
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(
        prefix=os.path.basename(target) + ".", suffix=suffix, dir=directory
    )
    os.close(descriptor)
    return partial


def _remove(path):
    if os.path.exists(path):
        os.remove(path)
