"""Downloads into a cache, verified by checksum, with a clear offline error.

Data files are looked up in this order:

1. `$KERAS_SSM_DATA/<subdir>/<filename>` (default `<repo>/../shared/data`):
   copies a user placed there by hand, e.g. on an offline machine;
2. the cache, `$KERAS_SSM_CACHE` (default `~/.cache/keras_ssm`);
3. the canonical URL, downloaded into the cache and checked against the
   checksum its publisher gives (MD5 or SHA-256).

Where a source publishes no checksum (the LRA release archive), the SHA-256
of the first download is written beside the file and later reads are checked
against it, so a truncated or changed file is still caught.
"""

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request

REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)


class DataUnavailableError(RuntimeError):
    """A data file is neither local nor downloadable (e.g. offline)."""


def data_dir():
    """`$KERAS_SSM_DATA`, default `<repo>/../shared/data`."""
    default = os.path.join(REPO_ROOT, os.pardir, "shared", "data")
    return os.path.abspath(os.environ.get("KERAS_SSM_DATA", default))


def cache_dir():
    """`$KERAS_SSM_CACHE`, default `~/.cache/keras_ssm` (created)."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "keras_ssm")
    path = os.path.abspath(os.environ.get("KERAS_SSM_CACHE", default))
    os.makedirs(path, exist_ok=True)
    return path


def file_digest(path, algorithm="sha256"):
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path, md5=None, sha256=None):
    """Raises ValueError if `path` does not have the given digest(s)."""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        actual = file_digest(path, algorithm)
        if actual != expected.lower():
            raise ValueError(
                f"Checksum mismatch for {path}: {algorithm} is {actual}, "
                f"expected {expected}. The file is corrupt or incomplete; "
                "delete it and download again."
            )


def _verify_first_use(path):
    """Records the SHA-256 on first use; checks it on later uses."""
    record = f"{path}.sha256"
    if os.path.exists(record):
        with open(record) as f:
            verify_checksum(path, sha256=f.read().split()[0])
    else:
        with open(record, "w") as f:
            f.write(f"{file_digest(path)}  {os.path.basename(path)}\n")


def fetch(url, filename, subdir, md5=None, sha256=None, progress=True):
    """Returns a local, verified path of `filename`, downloading if needed.

    Args:
        url: canonical download URL (`file://` URLs work too).
        filename: the file's name in the data and cache directories.
        subdir: sub-directory under the data and cache directories.
        md5: the publisher's MD5, if it publishes one.
        sha256: the publisher's SHA-256, if it publishes one. With neither,
            the first download's SHA-256 is recorded and checked later.
        progress: show a tqdm bar while downloading.

    Returns:
        The path of the verified file.

    Raises:
        DataUnavailableError: when the file is not local and the download
            fails (no network, server error); the message says where to put
            a manual copy.
        ValueError: when a file's checksum does not match.

    Example:

    >>> path = fetch(
    ...     "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ...     "cifar-10-python.tar.gz", "cifar10",
    ...     md5="c58f30108f718f92721af3b95e74349a")
    """
    local = os.path.join(data_dir(), subdir, filename)
    cached = os.path.join(cache_dir(), subdir, filename)
    for path in (local, cached):
        if os.path.exists(path):
            if md5 is None and sha256 is None:
                _verify_first_use(path)
            else:
                verify_checksum(path, md5=md5, sha256=sha256)
            return path
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    partial = f"{cached}.part"
    try:
        _download(url, partial, progress=progress)
    except (urllib.error.URLError, OSError) as error:
        if os.path.exists(partial):
            os.remove(partial)
        raise DataUnavailableError(
            f"Could not download {filename} from {url} ({error}). Are you "
            f"offline? Download it by hand and place it at {local} (the "
            "directory is $KERAS_SSM_DATA) or at "
            f"{cached} (the cache, $KERAS_SSM_CACHE)."
        ) from error
    try:
        verify_checksum(partial, md5=md5, sha256=sha256)
    except ValueError:
        os.remove(partial)
        raise
    os.replace(partial, cached)
    if md5 is None and sha256 is None:
        _verify_first_use(cached)
    return cached


def _download(url, path, progress=True):
    request = urllib.request.Request(url, headers={"User-Agent": "keras-ssm"})
    with urllib.request.urlopen(request, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=os.path.basename(path).removesuffix(".part"),
            )
        with open(path, "wb") as f:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()


def extract_tar(archive, destination, marker):
    """Extracts a tar archive once; `marker` is a path that proves it.

    Args:
        archive: the `.tar`, `.tar.gz` or `.gz` tar archive.
        destination: directory to extract into.
        marker: relative path inside `destination` that exists once the
            archive is extracted (checked to skip repeated extraction).

    Returns:
        `destination`.
    """
    if os.path.exists(os.path.join(destination, marker)):
        return destination
    os.makedirs(destination, exist_ok=True)
    tmp = f"{destination}.extracting"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    for name in os.listdir(tmp):
        target = os.path.join(destination, name)
        if os.path.exists(target):
            shutil.rmtree(target) if os.path.isdir(target) else os.remove(
                target
            )
        os.replace(os.path.join(tmp, name), target)
    shutil.rmtree(tmp, ignore_errors=True)
    if not os.path.exists(os.path.join(destination, marker)):
        raise ValueError(
            f"{archive} did not contain the expected {marker!r}; is it the "
            "right archive?"
        )
    return destination
